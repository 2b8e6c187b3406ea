"""Classification cycles: schedules, the refine2d/merge2d protocol, the cycle runner, executors.

- :mod:`.schedule`: which cycles a job runs (pure functions);
- :mod:`.prompts` / :mod:`.protocol`: the answer lists, validated before launch;
- :mod:`.engines`: the refine2d/merge2d pair (cisTEM or built-in, never mixed);
- :mod:`.inputs`: the cycle's input star, built from the dataset;
- :mod:`.runner` (with :mod:`.attempt`, :mod:`.assemble`): one cycle, jobs → merge → join;
- :mod:`.executors`: where jobs run (:mod:`.executors.local`: a bounded subprocess pool);
- :mod:`.procs`: process groups, the running-job registry, orphans after a crash;
- :mod:`.progress`, :mod:`.counts`, :mod:`.mrcheader`: progress bars, class counts, MRC headers.
- :mod:`.streaming`: streaming updates (new particles folded into the latest classes).
"""
