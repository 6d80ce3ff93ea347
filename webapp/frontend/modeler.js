// The process modeler on /processes/<key>/edit and /processes/new: bpmn-js Modeler with the Camunda 7
// properties panel (forms as camunda:formData, candidate groups, due dates, DMN references).
//
// Buttons (server-rendered, translated): #validate-button posts the XML to /processes/validate and
// lists each problem in #problems (a button per problem selects and shows its element); #deploy-button
// posts it to /processes/<key>/deploy and reports the new version in #modeler-status;
// #download-button saves the current XML as a file.

import Modeler from 'bpmn-js/lib/Modeler';
import {
  BpmnPropertiesPanelModule,
  BpmnPropertiesProviderModule,
  CamundaPlatformPropertiesProviderModule,
  CamundaPlatformTooltipProvider
} from 'bpmn-js-properties-panel';
import CamundaBehaviorsModule from 'camunda-bpmn-js-behaviors/lib/camunda-platform';
import camundaModdle from 'camunda-bpmn-moddle/resources/camunda.json';

import { DANISH, translateModule } from './translate-da.js';
import { existing, fetchText, fit, importDiagram, jsonData, labelCanvas, postJSON, say, wireZoom } from './common.js';

const PROBLEM_MARKER = 'af-problem';

class ModelerPage {
  constructor(root) {
    this.root = root;
    this.data = root.dataset;
    this.texts = jsonData(this.data.texts, {});
    this.status = root.querySelector('#modeler-status');
    this.problems = root.querySelector('#problems');
    this.buttons = {
      validate: root.querySelector('#validate-button'),
      deploy: root.querySelector('#deploy-button'),
      download: root.querySelector('#download-button')
    };
    this.marked = [];
    this.modeler = new Modeler({
      container: root.querySelector('#modeler'),
      propertiesPanel: { parent: root.querySelector('#properties-panel'), tooltip: CamundaPlatformTooltipProvider },
      additionalModules: [
        BpmnPropertiesPanelModule,
        BpmnPropertiesProviderModule,
        CamundaPlatformPropertiesProviderModule,
        CamundaBehaviorsModule,
        ...(document.documentElement.lang === 'da' ? [translateModule(DANISH)] : [])
      ],
      moddleExtensions: { camunda: camundaModdle }
    });
    root.modeler = this.modeler; // for tests and the console
  }

  text(key, values) {
    let template = this.texts[key] || key;
    Object.entries(values || {}).forEach(([name, value]) => {
      template = template.split('{' + name + '}').join(String(value));
    });
    return template;
  }

  async open() {
    let xml = this.data.xml || '';
    try {
      if (!xml) {
        xml = await fetchText(this.data.xmlUrl);
      }
      if (await importDiagram(this.modeler, xml)) {
        say(this.status, this.text('autoLayout'), 'info');
      }
    } catch (err) {
      say(this.status, this.text('loadError'), 'error');
      return;
    }
    fit(this.modeler);
    const svg = labelCanvas(this.modeler, this.data.labelCanvas || '', 'application');
    wireZoom(this.root, this.modeler, svg);
    this.root.querySelectorAll('.diagram__toolbar').forEach((el) => { el.hidden = false; });
    this.buttons.validate.addEventListener('click', () => this.validate());
    this.buttons.deploy.addEventListener('click', () => this.deploy());
    this.buttons.download.addEventListener('click', () => this.download());
    this.setBusy(false);
    this.root.classList.add('modeler--ready');
  }

  setBusy(busy) {
    Object.values(this.buttons).forEach((button) => {
      button.disabled = busy;
    });
    this.root.setAttribute('aria-busy', busy ? 'true' : 'false');
  }

  /** The id of the (first executable) process in the diagram: the key it deploys as. */
  processKey() {
    if (this.data.key) {
      return this.data.key;
    }
    const definitions = this.modeler.getDefinitions();
    const processes = (definitions && definitions.rootElements || []).filter((e) => e.$type === 'bpmn:Process');
    const executable = processes.find((p) => p.isExecutable) || processes[0];
    return executable ? executable.id : '';
  }

  async xml() {
    const { xml } = await this.modeler.saveXML({ format: true });
    return xml;
  }

  async validate() {
    this.setBusy(true);
    say(this.status, this.text('validating'), 'info');
    try {
      const result = await postJSON(this.data.validateUrl, { xml: await this.xml(), key: this.processKey() });
      if (!result.ok || !result.body) {
        this.showProblems(result.body && result.body.problems || [], result.body && result.body.detail);
        say(this.status, this.text('failed'), 'error');
      } else if (result.body.problems.length) {
        this.showProblems(result.body.problems);
        const n = result.body.problems.length;
        say(this.status, n === 1 ? this.text('invalidOne') : this.text('invalid', { n }), 'error');
      } else {
        this.showProblems([]);
        say(this.status, this.text('valid'), 'success');
      }
    } catch (err) {
      say(this.status, this.text('failed'), 'error');
    } finally {
      this.setBusy(false);
    }
  }

  async deploy() {
    this.setBusy(true);
    say(this.status, this.text('deploying'), 'info');
    const key = this.processKey();
    try {
      const url = this.data.deployUrl.replace('__KEY__', encodeURIComponent(key));
      const result = await postJSON(url, { xml: await this.xml() });
      const body = result.body || {};
      if (result.ok) {
        this.showProblems([]);
        this.deployed(key, body);
      } else {
        this.showProblems(body.problems || [], body.detail);
        say(this.status, body.title || this.text('failed'), 'error');
      }
    } catch (err) {
      say(this.status, this.text('failed'), 'error');
    } finally {
      this.setBusy(false);
    }
  }

  deployed(key, body) {
    const status = this.status;
    status.textContent = '';
    const message = document.createElement('span');
    message.textContent = body.message || '';
    status.appendChild(message);
    if (body.url) {
      status.appendChild(document.createTextNode(' '));
      const link = document.createElement('a');
      link.href = body.url;
      link.textContent = this.text('showProcess');
      status.appendChild(link);
    }
    status.hidden = false;
    status.className = status.className.replace(/\bmessage--\w+/g, '').trim() + ' message--success';
    // A new diagram has become a process: later deployments are its next versions.
    this.data.key = key;
    const base = document.getElementById('modeler-base');
    if (base && body.version) {
      base.textContent = this.text('basedOn', { v: body.version });
    }
  }

  async download() {
    const xml = await this.xml();
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([xml], { type: 'application/xml' }));
    link.download = (this.processKey() || 'diagram') + '.bpmn';
    document.body.appendChild(link);
    link.click();
    setTimeout(() => {
      URL.revokeObjectURL(link.href);
      link.remove();
    }, 0);
  }

  /** List problems; those naming an element get a button that selects and shows it, and a marker. */
  showProblems(problems, detail) {
    const canvas = this.modeler.get('canvas');
    this.marked.forEach((id) => canvas.removeMarker(id, PROBLEM_MARKER));
    this.marked = [];
    const list = this.problems.querySelector('ul');
    const heading = this.problems.querySelector('h2, h3');
    list.textContent = '';
    if (!problems.length && !detail) {
      this.problems.hidden = true;
      return;
    }
    if (detail && !problems.length) {
      const item = document.createElement('li');
      item.textContent = detail;
      list.appendChild(item);
    }
    problems.forEach((problem) => {
      const item = document.createElement('li');
      const id = problem.element_id;
      const found = id && existing(this.modeler, [id]).length;
      if (found) {
        canvas.addMarker(id, PROBLEM_MARKER);
        this.marked.push(id);
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'button--link problem-link';
        button.dataset.elementId = id;
        button.textContent = this.text('element', { id }) + ': ' + problem.message;
        button.addEventListener('click', () => this.showElement(id));
        item.appendChild(button);
      } else {
        item.textContent = (id ? this.text('element', { id }) + ': ' : '') + problem.message;
      }
      list.appendChild(item);
    });
    if (heading) {
      heading.textContent = this.text('problems', { n: problems.length || 1 });
    }
    this.problems.hidden = false;
    this.problems.focus();
  }

  showElement(id) {
    const registry = this.modeler.get('elementRegistry');
    const element = registry.get(id);
    if (!element) {
      return;
    }
    const canvas = this.modeler.get('canvas');
    try {
      canvas.scrollToElement(element, { top: 100, bottom: 100, left: 100, right: 100 });
    } catch (err) {
      // an element on another plane (inside a collapsed sub-process) cannot be scrolled to here
    }
    this.modeler.get('selection').select(element);
    this.root.querySelector('#modeler').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }
}

function init() {
  const root = document.querySelector('[data-bpmn-modeler]');
  if (root) {
    new ModelerPage(root).open();
  }
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}
