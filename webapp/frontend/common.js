// Shared by the viewer and the modeler: loading a diagram, zoom controls, markers, messages.
// Every text a person sees comes from the page (data-* attributes rendered with Flask-Babel).

import { layoutProcess } from 'bpmn-auto-layout';
import { BpmnModdle } from 'bpmn-moddle';

const ZOOM_STEP = 1.2;

/** Space-separated ids from a data attribute. */
export function words(value) {
  return (value || '').split(/\s+/).filter(Boolean);
}

/** Parse a JSON data attribute; a broken one counts as absent. */
export function jsonData(value, fallback) {
  if (!value) {
    return fallback;
  }
  try {
    return JSON.parse(value);
  } catch (err) {
    return fallback;
  }
}

/** GET a same-origin URL as text; throws on a non-2xx answer. */
export async function fetchText(url) {
  const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/xml' } });
  if (!response.ok) {
    throw new Error('HTTP ' + response.status);
  }
  return response.text();
}

/** The CSRF token the page carries in <meta name="csrf-token">. */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute('content') : '';
}

/** POST JSON with the CSRF token; resolves to {status, ok, body} whatever the status. */
export async function postJSON(url, payload) {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json',
      'X-CSRFToken': csrfToken()
    },
    body: JSON.stringify(payload)
  });
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  return { status: response.status, ok: response.ok, body };
}

/** Fit the whole diagram into the canvas, centred. */
export function fit(diagram) {
  const canvas = diagram.get('canvas');
  canvas.zoom('fit-viewport', 'auto');
}

/**
 * Wire the server-rendered zoom buttons (data-zoom="in|out|fit") inside `root`, and the keys
 * + / - / 0 on the focused canvas. The buttons are real <button>s with translated labels.
 */
export function wireZoom(root, diagram, keyTarget) {
  const canvas = diagram.get('canvas');
  const zoomBy = (factor) => {
    const viewbox = canvas.viewbox();
    const centre = { x: viewbox.outer.width / 2, y: viewbox.outer.height / 2 };
    canvas.zoom(canvas.zoom() * factor, centre);
  };
  const actions = {
    in: () => zoomBy(ZOOM_STEP),
    out: () => zoomBy(1 / ZOOM_STEP),
    fit: () => fit(diagram)
  };
  root.querySelectorAll('button[data-zoom]').forEach((button) => {
    button.addEventListener('click', () => actions[button.dataset.zoom]());
  });
  if (keyTarget) {
    keyTarget.addEventListener('keydown', (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) {
        return;
      }
      const action = { '+': 'in', '=': 'in', '-': 'out', '0': 'fit' }[event.key];
      if (action) {
        event.preventDefault();
        actions[action]();
      }
    });
  }
}

/** Give the canvas's focusable <svg> a role and an accessible name (it is in the tab order). */
export function labelCanvas(diagram, label, role, describedBy) {
  const svg = diagram.get('canvas')._svg;
  if (svg) {
    svg.setAttribute('role', role || 'img');
    svg.setAttribute('aria-label', label);
    if (describedBy) {
      svg.setAttribute('aria-describedby', describedBy);
    }
  }
  return svg;
}

/** The ids in `ids` that are shapes or connections of the diagram. */
export function existing(diagram, ids) {
  const registry = diagram.get('elementRegistry');
  return ids.filter((id) => registry.get(id));
}

/** Show a message in a status element (role=status / alert on the page). */
export function say(element, text, kind) {
  if (!element) {
    return;
  }
  element.textContent = text || '';
  element.hidden = !text;
  element.className = element.className.replace(/\bmessage--\w+/g, '').trim() + (kind ? ' message--' + kind : '');
}

/**
 * Import `xml` into a bpmn-js viewer or modeler. A file without a drawing (no BPMN DI, e.g. written
 * by hand or by another tool) is laid out automatically first. Resolves to true when it was.
 */
export async function importDiagram(diagram, xml) {
  try {
    await diagram.importXML(xml);
    return false;
  } catch (err) {
    if (!isMissingLayout(err)) {
      throw err;
    }
  }
  await diagram.importXML(await layoutProcess(await withFlowReferences(xml)));
  return true;
}

/**
 * The auto-layout follows each node's <incoming>/<outgoing> references, which hand-written files
 * often leave out: fill them in from the sequence flows' sourceRef/targetRef.
 */
async function withFlowReferences(xml) {
  const moddle = new BpmnModdle();
  const { rootElement } = await moddle.fromXML(xml);
  const link = (node, name, flow) => {
    if (node && !node.get(name).includes(flow)) {
      node.get(name).push(flow);
    }
  };
  const visit = (container) => {
    (container.flowElements || []).forEach((element) => {
      if (element.$type === 'bpmn:SequenceFlow') {
        link(element.sourceRef, 'outgoing', element);
        link(element.targetRef, 'incoming', element);
      }
      if (element.flowElements) {
        visit(element);
      }
    });
  };
  (rootElement.rootElements || []).filter((e) => e.$type === 'bpmn:Process').forEach(visit);
  return (await moddle.toXML(rootElement)).xml;
}

/** Did bpmn-js refuse the file because it has no diagram interchange (no layout)? */
export function isMissingLayout(err) {
  return /no diagram to display/i.test(String(err && err.message));
}
