"""The viewer process: receives recording streams and keeps them.

``rerun-logging`` (no subcommand), ``rerun-logging viewer`` and ``python -m
rerun_logging`` start it. It listens for TCP streams from any number of apps
(the ``connect`` and ``spawn`` sinks), loads recording files and standard input,
keeps every stream in a memory-bounded store, can save each stream to a directory,
print every record as it arrives, and serves the web page (``serve`` runs the same
server in a thread of the app).

Layout (a sans-I/O core and thin shells, as in ``websockets``)::

    store     RecordingStore: recordings, streams, stored frames; one owner, no I/O
    ingest    StreamIngest: bytes in (receive_data), replies out (data_to_send); no I/O
    peers     PeerTable: the TCP peers held, which one makes room for a new one; no I/O
    bursts    BurstReport: one report per burst of like events (failed accepts), not one each
    events    what the viewer reports (Listening, PeerRefused, Stopped, ...); no I/O
    report    the events as the lines said on standard error
    savedir   SaveDir: one ``.rlg`` file per stream under ``--save-dir``
    feed      FeedClient: records to JSON column batches for one page; no I/O
    export    the records a page asks to download, as a recording file; no I/O
    printing  ``--print``: each stored record as one line on standard output
    sockets   listening sockets, address names, a graceful close after a refusal
    files     recording files and standard input, checked and read off the loop
    browser   whether to open a browser on the web UI, and opening it
    web       WebServer: the page, static/ and the /ws feed on one port
    server    Viewer: the asyncio app routing sources, store, web UI and events
    thread    the viewer in a daemon thread of an app (``serve``) or of ``run``
    state     the viewer's state file (its ports and pid) for ``spawn`` and ``stop``

Nothing is imported here, so ``import rerun_logging.viewer`` costs nothing until a
module of it is used.
"""
