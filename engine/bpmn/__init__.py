"""AlmenFlow's own BPMN task specs and workflow classes on top of SpiffWorkflow 3.2, as Camunda 7
documents the constructs.

Events:
- event_definitions: signals (broadcast, with camunda:in payloads), errors and escalations (propagated
  to the nearest handler, an uncaught error is an incident)
- event_specs: task specs for the event-based gateway, event sub-processes, repeatable non-interrupting
  boundary events and the scope end that waits for running event sub-processes
- event_parsers: the parser side of the above (receive/send tasks, event sub-processes)
- preprocess: deploy-time checks and rewrites on the XML (link events, event gateway and event
  sub-process structure, the SpiffWorkflow extension dialect)
- timer_bounds: minimum cycle interval and maximum horizon of timers, at deploy and at run time

Scopes, sub-processes and multi-instance:
- scopes: process variables shared across parallel paths (Camunda's variable scopes)
- subprocesses: embedded sub-processes and call activities (camunda:in/out, binding, call depth)
- multi_instance: Camunda 7 multi-instance (loopCardinality, camunda:collection, nrOf*, completionCondition)
"""
