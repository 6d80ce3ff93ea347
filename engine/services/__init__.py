"""Engine services, one per concern (Camunda 7's split): definitions, runtime, tasks, history,
scheduler, identity."""
