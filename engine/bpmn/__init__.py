"""AlmenFlow's own BPMN task specs and workflow classes on top of SpiffWorkflow 3.2.

- scopes: process variables shared across parallel paths (Camunda's variable scopes)
- subprocesses: embedded sub-processes and call activities (camunda:in/out, binding, call depth)
- multi_instance: Camunda 7 multi-instance (loopCardinality, camunda:collection, nrOf*, completionCondition)
"""
