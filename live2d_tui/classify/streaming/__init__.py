"""Streaming classification: each update classifies the new particles (and a few revisited
blocks) against the latest classes and folds them into the averages (issue 20).

Modules (the design is in :mod:`.runner`):

- :mod:`.dumps`: both engines' partial class sums as one float64 model that adds and subtracts;
- :mod:`.stats`: running per-class statistics (memberships, exact score quantiles);
- :mod:`.index`: the block index, persisted atomically, and the stream folder's files;
- :mod:`.startail`: the new rows of the dataset's append-only star, read from a byte offset;
- :mod:`.plan`: which blocks an update creates, revisits and fuses (pure);
- :mod:`.registration`: how far each class moved between updates (the frame must not move);
- :mod:`.reseed`: classes for views that appear late;
- :mod:`.runner`: the update runner, built on the cycle runner's executor and attempt.
"""
