"""Classification cycles: schedules, the refine2d/merge2d protocol, the cycle runner, executors."""
