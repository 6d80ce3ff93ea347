// Danish for the most used parts of bpmn-js and the Camunda 7 properties panel: the palette, the
// context pad, the panel's group headings and the fields a process owner edits most (name, forum
// assignment, due date, forms, DMN). Anything not listed stays in bpmn-js's English. Used only when
// the page's language (<html lang>) is Danish.

export const DANISH = {
  // palette
  'Activate hand tool': 'Håndværktøj: flyt lærredet',
  'Activate lasso tool': 'Lassoværktøj: vælg flere elementer',
  'Activate create/remove space tool': 'Skab eller fjern plads',
  'Activate global connect tool': 'Forbind to elementer',
  'Create start event': 'Opret starthændelse',
  'Create intermediate/boundary event': 'Opret mellemliggende hændelse eller randhændelse',
  'Create end event': 'Opret sluthændelse',
  'Create gateway': 'Opret gateway',
  'Create task': 'Opret opgave',
  'Create data object reference': 'Opret dataobjekt',
  'Create data store reference': 'Opret datalager',
  'Create expanded sub-process': 'Opret delproces',
  'Create pool/participant': 'Opret pulje/deltager',
  'Create group': 'Opret gruppe',
  // context pad
  'Append end event': 'Tilføj sluthændelse',
  'Append gateway': 'Tilføj gateway',
  'Append task': 'Tilføj opgave',
  'Append intermediate/boundary event': 'Tilføj mellemliggende hændelse',
  'Append timer intermediate catch event': 'Tilføj tidsfrist',
  'Append message intermediate catch event': 'Tilføj ventende besked',
  'Add text annotation': 'Tilføj tekstnote',
  'Change element': 'Skift elementtype',
  'Connect to other element': 'Forbind til et andet element',
  'Connect using association': 'Forbind med en association',
  'Delete': 'Slet',
  'Add lane above': 'Tilføj svømmebane ovenfor',
  'Add lane below': 'Tilføj svømmebane nedenfor',
  'Divide into two lanes': 'Del i to svømmebaner',
  'Divide into three lanes': 'Del i tre svømmebaner',
  'Search in diagram': 'Søg i diagrammet',
  // properties panel: groups
  'General': 'Generelt',
  'Documentation': 'Dokumentation',
  'User assignment': 'Tildeling (forum, person, frist)',
  'Forms': 'Formular',
  'Form fields': 'Formularfelter',
  'Timer': 'Tidsfrist',
  'Condition': 'Betingelse',
  'Implementation': 'Implementering',
  'Constraints': 'Valideringsregler',
  'Values': 'Valgmuligheder',
  'Properties': 'Egenskaber',
  // properties panel: fields
  'Name': 'Navn',
  'ID': 'Id',
  'Process ID': 'Proces-id (nøgle)',
  'Element documentation': 'Beskrivelse af elementet',
  'Assignee': 'Tildelt person',
  'Candidate groups': 'Kandidatgrupper (fora)',
  'Candidate users': 'Kandidatbrugere',
  'Due date': 'Frist',
  'Follow up date': 'Opfølgningsdato',
  'Priority': 'Prioritet',
  'Label': 'Ledetekst',
  'Type': 'Type',
  'Default value': 'Standardværdi',
  'Decision reference': 'DMN-beslutning (id)',
  'Result variable': 'Resultatvariabel',
  'Condition expression': 'Betingelsesudtryk',
  'Executable': 'Kan køres',
  'Version tag': 'Versionsmærke',
  'Duration': 'Varighed',
  'Date': 'Dato',
  'Cycle': 'Gentagelse'
};

/** A bpmn-js translate module for `dictionary` (keeps bpmn-js's {placeholder} replacement). */
export function translateModule(dictionary) {
  function translate(template, replacements) {
    const text = dictionary[template] || template;
    return text.replace(/{([^}]+)}/g, (match, key) => {
      return replacements && key in replacements ? replacements[key] : match;
    });
  }
  return { translate: ['value', translate] };
}
