"""Classification cycles: schedules, the cycle runner, executors.

The runner speaks the refine2d/merge2d protocol of :mod:`live2d_tui.formats.protocol`.

- :mod:`.schedule`: which cycles a job runs (pure functions);
- :mod:`.engines`: the refine2d/merge2d pair (cisTEM or built-in, never mixed);
- :mod:`.inputs`: the cycle's input star, built from the dataset;
- :mod:`.runner` (with :mod:`.attempt`, :mod:`.assemble`): one cycle, program runs → merge → join;
- :mod:`.executors`: where program runs are executed (:mod:`.executors.local`: a bounded
  subprocess pool);
- :mod:`.procs`: process groups, the registry of running program runs, orphans after a crash;
- :mod:`.progress`, :mod:`.counts`: progress bars, class counts.
- :mod:`.streaming`: streaming updates (new particles folded into the latest classes).
"""
