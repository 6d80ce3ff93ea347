"""The BPMN models the benchmarks run. Plain BPMN 2.0 with Camunda attributes, as modelled for AlmenFlow;
the raw SpiffWorkflow baseline parses the same XML with its CamundaParser."""

from __future__ import annotations

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d_{key}" targetNamespace="http://almenflow/bench">
<bpmn:process id="{key}" name="{name}" isExecutable="true">
{lanes}
"""
TAIL = "</bpmn:process></bpmn:definitions>\n"


def _head(key: str, name: str, forum: str, *lane_ids: str) -> str:
    """The process header; the user tasks `lane_ids` sit in a lane named after their forum."""
    refs = "".join(f"<bpmn:flowNodeRef>{i}</bpmn:flowNodeRef>" for i in lane_ids)
    lanes = f' <bpmn:laneSet id="ls"><bpmn:lane id="lane" name="{forum}">{refs}</bpmn:lane></bpmn:laneSet>' if refs else ""
    return HEAD.format(key=key, name=name, lanes=lanes)


def five_step(key: str = "five", forum: str = "Sekretariat", name: str = "Fem trin", due: str | None = None) -> str:
    """start → user task A → script `total = n * 2` → exclusive gateway → user task B → end.
    `due` is task A's camunda:dueDate (e.g. P14D)."""
    due_attr = f' camunda:dueDate="{due}"' if due else ""
    return _head(key, name, forum, "a", "b") + f"""
 <bpmn:startEvent id="s"/>
 <bpmn:userTask id="a" name="A"{due_attr}/>
 <bpmn:scriptTask id="calc" scriptFormat="python"><bpmn:script>total = n * 2</bpmn:script></bpmn:scriptTask>
 <bpmn:exclusiveGateway id="gw" default="f5"/>
 <bpmn:userTask id="b" name="B"/>
 <bpmn:endEvent id="e"/>
 <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="a"/>
 <bpmn:sequenceFlow id="f2" sourceRef="a" targetRef="calc"/>
 <bpmn:sequenceFlow id="f3" sourceRef="calc" targetRef="gw"/>
 <bpmn:sequenceFlow id="f4" sourceRef="gw" targetRef="b"><bpmn:conditionExpression>total &gt; 1</bpmn:conditionExpression></bpmn:sequenceFlow>
 <bpmn:sequenceFlow id="f5" sourceRef="gw" targetRef="e"/>
 <bpmn:sequenceFlow id="f6" sourceRef="b" targetRef="e"/>
""" + TAIL


def review_loop(key: str = "review", forum: str = "Sekretariat") -> str:
    """A user task in a review loop: review → exclusive gateway → back to review while `again`."""
    return _head(key, "Review loop", forum, "review") + """
 <bpmn:startEvent id="s"/>
 <bpmn:userTask id="review" name="Review"/>
 <bpmn:exclusiveGateway id="gw" default="done"/>
 <bpmn:endEvent id="e"/>
 <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
 <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="gw"/>
 <bpmn:sequenceFlow id="again" sourceRef="gw" targetRef="review"><bpmn:conditionExpression>again</bpmn:conditionExpression></bpmn:sequenceFlow>
 <bpmn:sequenceFlow id="done" sourceRef="gw" targetRef="e"/>
""" + TAIL


def parallel_review(key: str = "fanout", forum: str = "Sekretariat") -> str:
    """A parallel multi-instance user task over the list variable `items`."""
    return _head(key, "Parallel review", forum, "each") + """
 <bpmn:startEvent id="s"/>
 <bpmn:userTask id="each" name="Review item">
  <bpmn:multiInstanceLoopCharacteristics camunda:collection="items" camunda:elementVariable="item"/>
 </bpmn:userTask>
 <bpmn:endEvent id="e"/>
 <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="each"/>
 <bpmn:sequenceFlow id="f2" sourceRef="each" targetRef="e"/>
""" + TAIL


def timer_wait(key: str = "wait", duration: str = "PT1H") -> str:
    """start → intermediate timer (`duration` after the start) → end: one timer per case."""
    return _head(key, "Timer", "") + f"""
 <bpmn:startEvent id="s"/>
 <bpmn:intermediateCatchEvent id="t"><bpmn:timerEventDefinition>
  <bpmn:timeDuration>{duration}</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
 <bpmn:endEvent id="e"/>
 <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
 <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>
""" + TAIL


# The form process of the engine-basics group and the isolation group: a form with a required field, a
# script using the business calendar, a gateway, a user task with a 6-week boundary timer.
FORM_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <bpmn:collaboration id="c"><bpmn:participant id="p" processRef="bench"/></bpmn:collaboration>
  <bpmn:process id="bench" name="Benchmark" isExecutable="true">
    <bpmn:laneSet id="ls">
      <bpmn:lane id="l1" name="Samarbejdsforum"><bpmn:flowNodeRef>s</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>forbered</bpmn:flowNodeRef><bpmn:flowNodeRef>beregn</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>gw</bpmn:flowNodeRef><bpmn:flowNodeRef>beslut</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>frist</bpmn:flowNodeRef><bpmn:flowNodeRef>e</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>e2</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="forbered" name="Forbered" camunda:dueDate="P14D">
      <bpmn:extensionElements><camunda:formData>
        <camunda:formField id="titel" label="Titel" type="string">
          <camunda:validation><camunda:constraint name="required"/></camunda:validation></camunda:formField>
        <camunda:formField id="antal" label="Antal" type="long" defaultValue="1"/>
      </camunda:formData></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:scriptTask id="beregn" scriptFormat="python"><bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>f3</bpmn:outgoing><bpmn:script>frist = iso(add_working_days(today(), 10))
total = sum([antal, 1])</bpmn:script></bpmn:scriptTask>
    <bpmn:exclusiveGateway id="gw" default="f5"><bpmn:incoming>f3</bpmn:incoming>
      <bpmn:outgoing>f4</bpmn:outgoing><bpmn:outgoing>f5</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:userTask id="beslut" name="Beslut"><bpmn:incoming>f4</bpmn:incoming>
      <bpmn:outgoing>f6</bpmn:outgoing></bpmn:userTask>
    <bpmn:boundaryEvent id="frist" attachedToRef="beslut"><bpmn:outgoing>f7</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>P6W</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="e"><bpmn:incoming>f5</bpmn:incoming><bpmn:incoming>f6</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="e2"><bpmn:incoming>f7</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="forbered"/>
    <bpmn:sequenceFlow id="f2" sourceRef="forbered" targetRef="beregn"/>
    <bpmn:sequenceFlow id="f3" sourceRef="beregn" targetRef="gw"/>
    <bpmn:sequenceFlow id="f4" sourceRef="gw" targetRef="beslut">
      <bpmn:conditionExpression>${total &gt; 1}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f5" sourceRef="gw" targetRef="e"/>
    <bpmn:sequenceFlow id="f6" sourceRef="beslut" targetRef="e"/>
    <bpmn:sequenceFlow id="f7" sourceRef="frist" targetRef="e2"/>
  </bpmn:process>
</bpmn:definitions>
"""
