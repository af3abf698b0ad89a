"""The exit statuses of every command (``rerun-logging``, its viewer, ``run``, ``stop``).

One table, so that a status means the same whatever command returns it; ``run``
returns its program's own status otherwise (and 128 + N for death by signal N, as
a shell does).
"""

EXIT_OK = 0
EXIT_BAD_RECORDING = 1
"""``verify`` found damage, or ``print`` could not read a recording."""
EXIT_NOT_STOPPED = 1
"""``stop``: no viewer stopped there."""
EXIT_USAGE = 2
"""A bad argument or sink spec, said in one line."""
EXIT_PORT_TAKEN = 3
"""The viewer's TCP port (named, not defaulted) is taken."""
EXIT_NOT_EXECUTABLE = 126
"""``run``: the program exists but cannot be executed (as a shell says)."""
EXIT_NOT_FOUND = 127
"""``run``: no such program (as a shell says)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT)."""
