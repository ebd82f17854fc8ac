"""When things happen: the planner, the due runner, the scheduler's wake-ups and the one leader."""
