"""BPMN event semantics on top of SpiffWorkflow, as Camunda 7 documents them.

- event_definitions: signals (broadcast, with camunda:in payloads), errors and escalations (propagated
  to the nearest handler, an uncaught error is an incident)
- event_specs: task specs for the event-based gateway, event sub-processes, repeatable non-interrupting
  boundary events and the scope end that waits for running event sub-processes
- event_parsers: the parser side of the above (receive/send tasks, event sub-processes)
- preprocess: deploy-time checks and rewrites on the XML (link events, event gateway and event
  sub-process structure, the SpiffWorkflow extension dialect)
- timer_bounds: minimum cycle interval and maximum horizon of timers, at deploy and at run time
"""
