/**
 * Pure logic behind the whatsappComposer component: no LWC, no wire adapters, no clock, no labels.
 * It turns what the rep typed and picked into the WhatsApp_Message__c record sfwa sends (the data
 * contract of DESIGN.md: Message_Type__c, Template_Parameters__c JSON, Reengagement_* fields,
 * Media_File_Id__c / Media_URL__c), and says in codes what is wrong; the component words the codes
 * with Custom Labels. Jest tests every function directly.
 */

export const OBJECT = 'WhatsApp_Message__c';

/** Body__c is a Long Text Area(4096), and WhatsApp's text body limit is the same. */
export const MAX_BODY = 4096;
/** WhatsApp refuses media captions over 1024 characters. */
export const MAX_CAPTION = 1024;
/** Media_URL__c is a URL field: Salesforce's fixed limit is 255 characters. */
export const MAX_URL = 255;

/** What the composer can send. */
export const MODE = Object.freeze({ TEXT: 'text', TEMPLATE: 'template', FILE: 'file', LINK: 'link' });

/** The reasons a message cannot be sent yet (the component maps each to a Custom Label). */
export const PROBLEM = Object.freeze({
    BODY_EMPTY: 'BODY_EMPTY',
    BODY_TOO_LONG: 'BODY_TOO_LONG',
    CAPTION_TOO_LONG: 'CAPTION_TOO_LONG',
    TEMPLATE_MISSING: 'TEMPLATE_MISSING',
    PARAMETERS_MISSING: 'PARAMETERS_MISSING',
    HEADER_LINK_INVALID: 'HEADER_LINK_INVALID',
    FILE_MISSING: 'FILE_MISSING',
    FILE_UNSUPPORTED: 'FILE_UNSUPPORTED',
    URL_EMPTY: 'URL_EMPTY',
    URL_TOO_LONG: 'URL_TOO_LONG',
    URL_NOT_HTTPS: 'URL_NOT_HTTPS',
    MEDIA_TYPE_MISSING: 'MEDIA_TYPE_MISSING',
    WINDOW_CLOSED: 'WINDOW_CLOSED',
    NO_PHONE: 'NO_PHONE'
});

/**
 * Message_Type__c by file extension: the formats WhatsApp's Cloud API accepts for each media type
 * (image: JPEG, PNG; video: MP4, 3GPP; audio: AAC, AMR, MP3, MP4 audio, OGG/Opus; document:
 * PDF, Word, Excel, PowerPoint, plain text). Anything else Meta refuses on upload, so the composer
 * refuses it first, in words.
 */
export const MEDIA_TYPE_BY_EXTENSION = Object.freeze({
    jpg: 'Image',
    jpeg: 'Image',
    png: 'Image',
    mp4: 'Video',
    '3gp': 'Video',
    '3gpp': 'Video',
    aac: 'Audio',
    amr: 'Audio',
    mp3: 'Audio',
    m4a: 'Audio',
    ogg: 'Audio',
    opus: 'Audio',
    pdf: 'Document',
    doc: 'Document',
    docx: 'Document',
    xls: 'Document',
    xlsx: 'Document',
    ppt: 'Document',
    pptx: 'Document',
    txt: 'Document'
});

export const MEDIA_TYPES = ['Image', 'Document', 'Video', 'Audio'];

const MINUTE = 60 * 1000;

function blank(value) {
    return value === null || value === undefined || String(value).trim() === '';
}

/** "Hello {0}, {1}" with the arguments in place: Custom Labels use this placeholder form. */
export function formatLabel(label, ...args) {
    return String(label ?? '').replace(/\{(\d+)\}/g, (whole, index) => {
        const arg = args[Number(index)];
        return arg === undefined ? whole : String(arg);
    });
}

/** The lower-case extension of a file name or URL path ("Price List.PDF" → "pdf"), or ''. */
export function extensionOf(name) {
    if (blank(name)) {
        return '';
    }
    let path = String(name).trim();
    // A URL: look at its path only (not the query or the fragment).
    path = path.split(/[?#]/)[0];
    const slash = path.lastIndexOf('/');
    const last = slash >= 0 ? path.slice(slash + 1) : path;
    const dot = last.lastIndexOf('.');
    return dot > 0 ? last.slice(dot + 1).toLowerCase() : '';
}

/** Message_Type__c for a file name (Image, Document, Video, Audio), or null when WhatsApp cannot send it. */
export function mediaTypeFor(name) {
    return MEDIA_TYPE_BY_EXTENSION[extensionOf(name)] ?? null;
}

/** The extensions the composer accepts, for the file picker (".jpg,.png,…"). */
export const ACCEPTED_EXTENSIONS = Object.keys(MEDIA_TYPE_BY_EXTENSION).map((ext) => `.${ext}`);

/**
 * A public media link: trimmed, at most 255 characters, https only, with a host.
 * Returns null when it is fine, else a PROBLEM code.
 */
export function checkMediaUrl(value) {
    if (blank(value)) {
        return PROBLEM.URL_EMPTY;
    }
    const url = String(value).trim();
    if (url.length > MAX_URL) {
        return PROBLEM.URL_TOO_LONG;
    }
    let parsed;
    try {
        parsed = new URL(url);
    } catch {
        return PROBLEM.URL_NOT_HTTPS;
    }
    if (parsed.protocol !== 'https:' || blank(parsed.hostname)) {
        return PROBLEM.URL_NOT_HTTPS;
    }
    return null;
}

// ---------------------------------------------------------------------------------------------
// The template catalog (WhatsApp_Template__c, synced by sfwa).
// ---------------------------------------------------------------------------------------------

/** A GraphQL field (`{ value }`) or a plain value. */
function gqlValue(field) {
    if (field && typeof field === 'object' && 'value' in field) {
        return field.value ?? null;
    }
    return field ?? null;
}

/**
 * The placeholders of a template body, in order of first appearance ("{{1}}", "{{ first_name }}").
 */
export function placeholdersIn(body) {
    const names = [];
    const re = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;
    let match;
    while ((match = re.exec(String(body ?? ''))) !== null) {
        if (!names.includes(match[1])) {
            names.push(match[1]);
        }
    }
    return names;
}

/**
 * The parameters a template needs, from Parameter_Names__c ("1,2" or "first_name,order_id"), else
 * Parameter_Count__c ({{1}}…{{n}}), else the placeholders of the body. `named` is true when the
 * names are not the positions 1, 2, … (WhatsApp's named parameters).
 */
export function templateParameters(template) {
    let names = String(template.parameterNames ?? '')
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== '');
    if (names.length === 0 && Number(template.parameterCount) > 0) {
        names = Array.from({ length: Number(template.parameterCount) }, (unused, i) => String(i + 1));
    }
    if (names.length === 0) {
        names = placeholdersIn(template.body);
    }
    const named = names.some((name) => !/^\d+$/.test(name));
    return { names, named };
}

/** The template's name as WhatsApp knows it: Template_Key__c is "name|language". */
function templateName(key, name) {
    if (!blank(key) && key.includes('|')) {
        return key.slice(0, key.lastIndexOf('|'));
    }
    return name;
}

/**
 * The approved templates from the graphql wire's data
 * (`uiapi.query.WhatsApp_Template__c.edges[].node`), as plain objects sorted by name and language.
 */
export function templatesFromGraphql(data) {
    const edges = data?.uiapi?.query?.WhatsApp_Template__c?.edges ?? [];
    const templates = edges
        .map(({ node }) => {
            const key = gqlValue(node.Template_Key__c);
            const language = gqlValue(node.Language__c) ?? '';
            const template = {
                id: node.Id,
                key,
                name: templateName(key, gqlValue(node.Name)),
                language,
                category: gqlValue(node.Category__c) ?? '',
                body: gqlValue(node.Body__c) ?? '',
                parameterNames: gqlValue(node.Parameter_Names__c),
                parameterCount: gqlValue(node.Parameter_Count__c),
                headerType: (gqlValue(node.Header_Type__c) ?? '').toUpperCase()
            };
            return { ...template, ...templateParameters(template) };
        })
        .filter((template) => !blank(template.name));
    templates.sort((a, b) => a.name.localeCompare(b.name) || a.language.localeCompare(b.language));
    return templates;
}

/** Combobox options: "order_update (en_US, UTILITY)". */
export function templateOptions(templates) {
    return templates.map((template) => ({
        label: template.category
            ? `${template.name} (${template.language}, ${template.category})`
            : `${template.name} (${template.language})`,
        value: template.id
    }));
}

/** A template with a media header (IMAGE, VIDEO, DOCUMENT) needs a link for it when sent. */
export function needsHeaderLink(template) {
    return Boolean(template) && ['IMAGE', 'VIDEO', 'DOCUMENT'].includes(template.headerType);
}

/** The inputs for a template's parameters: `{{1}}` for positional ones, the name for named ones. */
export function parameterInputs(template, values) {
    if (!template) {
        return [];
    }
    return template.names.map((name) => ({
        name,
        label: template.named ? name : `{{${name}}}`,
        value: (values && values[name]) ?? ''
    }));
}

/**
 * The template's text with the rep's values in place, as segments the component renders:
 * `{ key, text, filled, missing, className }`. An empty parameter keeps its placeholder and is marked missing.
 */
export function previewSegments(body, values) {
    const segments = [];
    const re = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;
    const text = String(body ?? '');
    let last = 0;
    let match;
    while ((match = re.exec(text)) !== null) {
        if (match.index > last) {
            segments.push({ text: text.slice(last, match.index), filled: false, missing: false });
        }
        const value = values ? values[match[1]] : undefined;
        if (blank(value)) {
            segments.push({ text: `{{${match[1]}}}`, filled: false, missing: true });
        } else {
            segments.push({ text: String(value), filled: true, missing: false });
        }
        last = match.index + match[0].length;
    }
    if (last < text.length) {
        segments.push({ text: text.slice(last), filled: false, missing: false });
    }
    const classFor = (segment) => {
        if (segment.missing) {
            return 'preview-missing';
        }
        return segment.filled ? 'preview-filled' : 'preview-text';
    };
    return segments.map((segment, i) => ({ key: `s${i}`, ...segment, className: classFor(segment) }));
}

/** The preview as one string (what the customer reads), empty parameters left as their placeholder. */
export function previewText(body, values) {
    return previewSegments(body, values)
        .map((segment) => segment.text)
        .join('');
}

/** The names of the template's parameters the rep has not filled in. */
export function missingParameters(template, values) {
    if (!template) {
        return [];
    }
    return template.names.filter((name) => blank(values ? values[name] : undefined));
}

/**
 * Template_Parameters__c (and Reengagement_Parameters__c) as DESIGN's data contract has it:
 * `["a","b"]` for positional parameters, `{"body":{"first_name":"Ana"}}` for named ones, and the
 * object form with `"header":{"type":"image","link":…}` when the template has a media header.
 * null when the template takes nothing.
 */
export function buildParametersJson(template, values, headerLink) {
    if (!template) {
        return null;
    }
    const value = (name) => String(values[name] ?? '').trim();
    let body = null;
    if (template.names.length > 0) {
        body = template.named
            ? Object.fromEntries(template.names.map((name) => [name, value(name)]))
            : template.names.map(value);
    }
    if (needsHeaderLink(template)) {
        const json = { header: { type: template.headerType.toLowerCase(), link: String(headerLink ?? '').trim() } };
        if (body !== null) {
            json.body = body;
        }
        return JSON.stringify(json);
    }
    if (body === null) {
        return null;
    }
    return JSON.stringify(template.named ? { body } : body);
}

// ---------------------------------------------------------------------------------------------
// The page's record: lookups and phone.
// ---------------------------------------------------------------------------------------------

/** Optional fields getRecord reads for the phone and the lookups, per object. */
export function recordFields(objectApiName) {
    switch (objectApiName) {
        case 'Contact':
            return ['Contact.MobilePhone', 'Contact.Phone'];
        case 'Lead':
            return ['Lead.MobilePhone', 'Lead.Phone'];
        case 'Case':
            return [
                'Case.ContactId',
                'Case.ContactMobile',
                'Case.ContactPhone',
                'Case.Contact.MobilePhone',
                'Case.Contact.Phone'
            ];
        case 'Account':
            return ['Account.IsPersonAccount', 'Account.PersonContactId', 'Account.PersonMobilePhone', 'Account.Phone'];
        default:
            return [];
    }
}

/** A field of a getRecord result, following a relationship ("Contact.MobilePhone"); null when absent. */
export function recordValue(record, path) {
    let current = record;
    for (const part of path.split('.')) {
        if (!current || !current.fields || !current.fields[part]) {
            return null;
        }
        current = current.fields[part].value;
    }
    return current ?? null;
}

/**
 * The phone fields to read, most preferred first, and the names a rep is told to fill in when
 * all are empty (MobilePhone first: WhatsApp numbers are mobile numbers).
 */
const PHONE_SOURCES = {
    Contact: { paths: ['MobilePhone', 'Phone'], fill: ['MobilePhone', 'Phone'] },
    Lead: { paths: ['MobilePhone', 'Phone'], fill: ['MobilePhone', 'Phone'] },
    Case: {
        paths: ['ContactMobile', 'Contact.MobilePhone', 'ContactPhone', 'Contact.Phone'],
        fill: ['Contact.MobilePhone', 'Contact.Phone']
    },
    Account: { paths: ['PersonMobilePhone', 'Phone'], fill: ['PersonMobilePhone', 'Phone'] }
};

/**
 * The number to send to: `toPhone` when the caller gave one, else the record's (MobilePhone
 * first). Returns `{ phone, source }`, or `{ phone: null, fill: [fields to fill in] }`.
 */
export function choosePhone(objectApiName, record, toPhone) {
    if (!blank(toPhone)) {
        return { phone: String(toPhone).trim(), source: 'to-phone' };
    }
    const sources = PHONE_SOURCES[objectApiName] ?? { paths: [], fill: ['MobilePhone', 'Phone'] };
    for (const path of sources.paths) {
        const value = recordValue(record, path);
        if (!blank(value)) {
            return { phone: String(value).trim(), source: path };
        }
    }
    return { phone: null, fill: sources.fill };
}

/**
 * The lookups that put the message in the page's conversation: Contact__c, Lead__c, Case__c (and
 * the Case's Contact when known) or Account__c (and a Person Account's PersonContactId as Contact__c).
 */
export function lookupFields(objectApiName, recordId, record) {
    if (blank(recordId)) {
        return {};
    }
    switch (objectApiName) {
        case 'Contact':
            return { Contact__c: recordId };
        case 'Lead':
            return { Lead__c: recordId };
        case 'Case': {
            const contactId = recordValue(record, 'ContactId');
            return contactId ? { Case__c: recordId, Contact__c: contactId } : { Case__c: recordId };
        }
        case 'Account': {
            const personContactId = recordValue(record, 'PersonContactId');
            return personContactId ? { Account__c: recordId, Contact__c: personContactId } : { Account__c: recordId };
        }
        default:
            return {};
    }
}

// ---------------------------------------------------------------------------------------------
// Checking and building the record.
// ---------------------------------------------------------------------------------------------

/**
 * What is wrong with the draft, as `{ code, names? }`, or null when it can be sent.
 * `draft`: { mode, windowOpen, body, template, values, headerLink, reengage, file, caption,
 * url, urlType }.
 */
export function checkDraft(draft) {
    const template = draft.template;
    const checkTemplate = () => {
        if (!template) {
            return { code: PROBLEM.TEMPLATE_MISSING };
        }
        const missing = missingParameters(template, draft.values);
        if (missing.length > 0) {
            return { code: PROBLEM.PARAMETERS_MISSING, names: missing };
        }
        if (needsHeaderLink(template) && checkMediaUrl(draft.headerLink) !== null) {
            return { code: PROBLEM.HEADER_LINK_INVALID };
        }
        return null;
    };
    switch (draft.mode) {
        case MODE.TEXT: {
            if (blank(draft.body)) {
                return { code: PROBLEM.BODY_EMPTY };
            }
            if (String(draft.body).length > MAX_BODY) {
                return { code: PROBLEM.BODY_TOO_LONG };
            }
            // A closed window: the text waits for the customer's answer to a re-engagement template.
            return draft.windowOpen ? null : checkTemplate();
        }
        case MODE.TEMPLATE:
            return checkTemplate();
        case MODE.FILE:
        case MODE.LINK: {
            if (!draft.windowOpen) {
                return { code: PROBLEM.WINDOW_CLOSED };
            }
            if (String(draft.caption ?? '').length > MAX_CAPTION) {
                return { code: PROBLEM.CAPTION_TOO_LONG };
            }
            if (draft.mode === MODE.FILE) {
                if (!draft.file || blank(draft.file.id)) {
                    return { code: PROBLEM.FILE_MISSING };
                }
                return mediaTypeFor(draft.file.name) ? null : { code: PROBLEM.FILE_UNSUPPORTED };
            }
            const urlProblem = checkMediaUrl(draft.url);
            if (urlProblem) {
                return { code: urlProblem };
            }
            return MEDIA_TYPES.includes(draft.urlType) ? null : { code: PROBLEM.MEDIA_TYPE_MISSING };
        }
        default:
            return { code: PROBLEM.BODY_EMPTY };
    }
}

/**
 * The business number to write, or null: only when the caller gave one and the rep may set
 * Business_Number_Id__c (the objectInfo of WhatsApp_Message__c says the field is createable). A
 * rep without that permission sends from sfwa's default number rather than not at all.
 */
export function businessNumberFor(businessNumberId, objectInfo) {
    if (blank(businessNumberId)) {
        return null;
    }
    const field = objectInfo && objectInfo.fields ? objectInfo.fields.Business_Number_Id__c : undefined;
    return field && field.createable ? String(businessNumberId).trim() : null;
}

/**
 * The createRecord input for the draft (checkDraft must have returned null): an Outbound, Queued
 * WhatsApp_Message__c (Direction__c defaults to Outbound) with the recipient and the page's lookups.
 * `context`: { toPhone, businessNumberId, lookups }.
 */
export function buildRecord(draft, context) {
    // Direction__c is left to its default (Outbound): reps may read it but not set it.
    const fields = {
        Status__c: 'Queued',
        To_Phone__c: context.toPhone,
        ...context.lookups
    };
    if (!blank(context.businessNumberId)) {
        fields.Business_Number_Id__c = String(context.businessNumberId).trim();
    }
    const template = draft.template;
    switch (draft.mode) {
        case MODE.TEXT:
            fields.Message_Type__c = 'Text';
            fields.Body__c = draft.body;
            if (!draft.windowOpen) {
                fields.Reengagement_Template__c = template.name;
                fields.Reengagement_Language__c = template.language;
                const json = buildParametersJson(template, draft.values, draft.headerLink);
                if (json !== null) {
                    fields.Reengagement_Parameters__c = json;
                }
            }
            break;
        case MODE.TEMPLATE: {
            fields.Message_Type__c = 'Template';
            fields.Template_Name__c = template.name;
            fields.Template_Language__c = template.language;
            const json = buildParametersJson(template, draft.values, draft.headerLink);
            if (json !== null) {
                fields.Template_Parameters__c = json;
            }
            break;
        }
        case MODE.FILE:
            fields.Message_Type__c = mediaTypeFor(draft.file.name);
            fields.Media_File_Id__c = draft.file.id;
            if (!blank(draft.file.name)) {
                fields.Media_Filename__c = String(draft.file.name).slice(0, 255);
            }
            if (!blank(draft.caption)) {
                fields.Body__c = draft.caption;
            }
            break;
        case MODE.LINK:
            fields.Message_Type__c = draft.urlType;
            fields.Media_URL__c = String(draft.url).trim();
            if (!blank(draft.caption)) {
                fields.Body__c = draft.caption;
            }
            break;
        default:
            break;
    }
    return { apiName: OBJECT, fields };
}

/**
 * The words of a createRecord failure: the UI API's record errors, field errors (with the field),
 * its message, or the JavaScript error's message; null when there is none.
 */
export function errorText(error) {
    if (!error) {
        return null;
    }
    const body = error.body;
    const messages = [];
    const bodies = Array.isArray(body) ? body : [body];
    for (const item of bodies) {
        if (!item) {
            continue;
        }
        const before = messages.length;
        const output = item.output;
        if (output) {
            for (const e of output.errors ?? []) {
                if (e && e.message) {
                    messages.push(e.message);
                }
            }
            for (const [field, errors] of Object.entries(output.fieldErrors ?? {})) {
                for (const e of errors ?? []) {
                    if (e && e.message) {
                        messages.push(`${e.fieldLabel || field}: ${e.message}`);
                    }
                }
            }
        }
        if (messages.length === before && item.message) {
            messages.push(item.message);
        }
    }
    if (messages.length === 0 && error.message) {
        messages.push(error.message);
    }
    return messages.length > 0 ? messages.join(' ') : null;
}

/** Hours and minutes left of the window, or null when it is closed or unknown. */
export function remaining(windowExpiresAt, now) {
    const expires = typeof windowExpiresAt === 'number' ? windowExpiresAt : Date.parse(windowExpiresAt);
    if (Number.isNaN(expires) || expires <= now) {
        return null;
    }
    const minutes = Math.floor((expires - now) / MINUTE);
    return { hours: Math.floor(minutes / 60), minutes: minutes % 60 };
}
