"""The viewer process: receives recording streams and keeps them.

``rerun-logging`` (no subcommand), ``rerun-logging viewer`` and ``python -m
rerun_logging`` start it. It listens for TCP streams from any number of apps
(the ``connect`` and ``spawn`` sinks), loads recording files and standard input,
keeps every stream in a memory-bounded store, and can save each stream to a
directory and print every record as it arrives. The web UI comes later.

Layout (a sans-I/O core and thin shells, as in ``websockets``)::

    store     RecordingStore: recordings, streams, stored frames; one owner, no I/O
    ingest    StreamIngest: bytes in, acknowledgements/refusals out, per source
    savedir   SaveDir: one ``.rrd`` file per stream under ``--save-dir``
    server    the asyncio shell: sockets, files, stdin, signals, timeouts
    feed      FeedClient: records to JSON column batches for one browser; no I/O
    web       WebServer: the page, static/ and the /ws feed on one port (not wired yet)

Nothing is imported here, so ``import rerun_logging.viewer`` costs nothing until a
module of it is used.
"""
