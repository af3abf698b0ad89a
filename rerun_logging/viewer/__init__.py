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
    bursts    BurstReport: one line per burst of refused peers, not one per peer
    savedir   SaveDir: one ``.rrd`` file per stream under ``--save-dir``
    feed      FeedClient: records to JSON column batches for one page; no I/O
    export    the records a page asks to download, as a recording file; no I/O
    web       WebServer: the page, static/ and the /ws feed on one port
    server    the asyncio shell: sockets, files, stdin, signals, timeouts
    thread    the server on its own event loop in a daemon thread (``serve``, ``run``)
    state     the viewer's state file (its ports and pid) for ``spawn`` and ``stop``

Nothing is imported here, so ``import rerun_logging.viewer`` costs nothing until a
module of it is used.
"""
