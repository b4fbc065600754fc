"""The answer service: one function per answer, each one pinned read of the store and a stamped document.

Every door (the ``lineage`` commands, the console's pages, its JSON API and downloads, the demo)
asks here and only shapes the result for its medium, so an answer is the same document whichever
door it came through, stamped alike:

- ``read``     the pinned read and its stamp: the snapshot, how far the holdings lag the stored events,
               events stamped after now, the as-of and the identifier links followed
- ``answers``  access, erasure, person, breach, transfers, retention, ropa, check, graph and the map
"""
