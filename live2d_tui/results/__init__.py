"""What a user takes from a cycle: per-class quality, class selection, exports and reports.

A floor above ``dataset/`` (it reads the ledger and the combined stack's stars) and beside
``classify/``; the supervisor starts the per-class estimate after each cycle as a separate,
niced process (``live2d quality``), and the ``export``, ``report`` and ``quality`` commands and
the UI read what these modules write:

- :mod:`.quality`: the per-class half-set consistency estimate and its cache
  (``cycle_<N>.quality.json``);
- :mod:`.selection`: good/bad marks per class (``cycle_<N>.selection.json``) and how they carry
  to the next cycle;
- :mod:`.export`: selected classes' active particles as a RELION 3.1 or cisTEM star;
- :mod:`.report`: a PNG montage of a cycle's classes.

Nothing here writes outside the output folder's own result files (and an export's target), and
an export or a report never changes the session.
"""
