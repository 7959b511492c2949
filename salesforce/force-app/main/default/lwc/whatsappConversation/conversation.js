/**
 * Pure logic behind the whatsappConversation component: no LWC, no wire adapters, no clock, no
 * Custom Label imports. Every function takes the records (as the UI API returns them, or plain
 * objects), `now` (epoch milliseconds) and, where it produces words, the `labels` object of
 * ./labels.js, so Jest can test them directly and the component stays a thin shell around them.
 */

export const OBJECT = 'WhatsApp_Message__c';

/**
 * The child relationship from Contact, Lead, Case and Account (Contact__c, Lead__c, Case__c and
 * Account__c lookups all name it WhatsApp_Messages).
 */
export const RELATED_LIST_ID = 'WhatsApp_Messages__r';

/** The fields the component reads, qualified as getRelatedListRecords wants them. */
export const FIELDS = [
    'Name',
    'CreatedDate',
    'SystemModstamp',
    'Direction__c',
    'Status__c',
    'Message_Type__c',
    'Body__c',
    'Template_Name__c',
    'Media_URL__c',
    'Media_Filename__c',
    'Scheduled_At__c',
    'Sent_At__c',
    'Delivered_At__c',
    'Read_At__c',
    'Failed_At__c',
    'Received_At__c',
    'Window_Expires_At__c',
    'Error_Code__c',
    'Error_Message__c',
    'From_Phone__c',
    'To_Phone__c',
    'Business_Number_Id__c'
].map((field) => `${OBJECT}.${field}`);

/** Newest first: the wired first page holds the latest messages, "Load older" pages back. */
export const SORT_BY = [`-${OBJECT}.CreatedDate`];

/** Records per page: a screenful or two of chat; older pages are fetched on demand. */
export const PAGE_SIZE = 50;

/** WhatsApp's customer-service window: 24 hours after the customer's last message. */
export const WINDOW_MS = 24 * 60 * 60 * 1000;

const SECOND = 1000;
const MINUTE = 60 * SECOND;

/**
 * Live refresh without streaming: poll after 5 s, doubling while nothing changes, at most every
 * 60 s. A poll is one UI API request for the newest page; a rep who leaves a record open all day
 * costs at most one request a minute, and a conversation in progress shows replies within ~5 s.
 */
export const REFRESH_MIN_MS = 5 * SECOND;
export const REFRESH_MAX_MS = 60 * SECOND;

/** Outbound statuses a rep may still cancel (the Cancel_Only_Before_Sending validation rule). */
export const CANCELABLE_STATUSES = ['Queued', 'Waiting for Reply'];

/** How far from the bottom (px) still counts as "reading the newest message". */
export const BOTTOM_SLACK_PX = 24;

/** A label with `{0}`, `{1}` … placeholders, filled in (Custom Labels use this convention). */
export function formatLabel(template, ...values) {
    return String(template ?? '').replace(/\{(\d+)\}/g, (match, index) => {
        const value = values[Number(index)];
        return value === undefined || value === null ? match : String(value);
    });
}

/**
 * A field's value from a UI API record (`{ fields: { X: { value } } }`) or a plain object
 * (`{ X: value }`); null when absent.
 */
export function fieldValue(record, name) {
    if (!record) {
        return null;
    }
    if (record.fields) {
        const field = record.fields[name];
        return field === undefined || field === null ? null : (field.value ?? null);
    }
    return record[name] ?? null;
}

/** The user-facing value (a picklist's translated label) when the UI API gives one. */
function displayValue(record, name) {
    const field = record && record.fields ? record.fields[name] : null;
    return (field && field.displayValue) || fieldValue(record, name);
}

function recordId(record) {
    return record.id ?? record.Id ?? fieldValue(record, 'Id');
}

/** Epoch milliseconds of an ISO date-time, or null. */
function toMillis(value) {
    if (value === null || value === undefined || value === '') {
        return null;
    }
    const millis = typeof value === 'number' ? value : Date.parse(value);
    return Number.isNaN(millis) ? null : millis;
}

export function isInbound(record) {
    return fieldValue(record, 'Direction__c') === 'Inbound';
}

/**
 * When a message belongs on the timeline: inbound at the moment the customer sent it, outbound
 * when WhatsApp sent it, or when it was created while it is still queued or if it failed first.
 */
export function messageTime(record) {
    const created = toMillis(fieldValue(record, 'CreatedDate'));
    if (isInbound(record)) {
        return toMillis(fieldValue(record, 'Received_At__c')) ?? created;
    }
    return toMillis(fieldValue(record, 'Sent_At__c')) ?? created;
}

/**
 * The status mark under an outbound bubble. Each status has its own icon *shape* (not only a
 * colour, so Read and Delivered differ for colour-blind reps and in dark mode), with the status
 * as its alternative text. Returns { status, label, icon, double, variant, failed, reason, note,
 * cancelable }; inbound messages get none (null).
 */
export function ticks(record, labels) {
    if (isInbound(record)) {
        return null;
    }
    const status = fieldValue(record, 'Status__c');
    const mark = (fields) => ({
        status,
        double: false,
        variant: undefined,
        failed: false,
        reason: null,
        note: null,
        cancelable: CANCELABLE_STATUSES.includes(status),
        ...fields
    });
    switch (status) {
        case 'Sent':
            return mark({ label: labels.statusSent, icon: 'utility:check' });
        case 'Delivered':
            // Two checks, as on the customer's phone: the second icon is decorative.
            return mark({ label: labels.statusDelivered, icon: 'utility:check', double: true });
        case 'Read':
            return mark({ label: labels.statusRead, icon: 'utility:preview' });
        case 'Failed':
            return mark({
                label: labels.statusFailed,
                icon: 'utility:error',
                variant: 'error',
                failed: true,
                reason: fieldValue(record, 'Error_Message__c') || fieldValue(record, 'Error_Code__c') || labels.failedGeneric
            });
        case 'Sending':
            return mark({ label: labels.statusSending, icon: 'utility:sync' });
        case 'Waiting for Reply':
            return mark({ label: labels.statusWaiting, icon: 'utility:pause', note: labels.waitingExplained });
        case 'Canceled':
            return mark({ label: labels.statusCanceled, icon: 'utility:ban' });
        default: {
            // Queued (and a blank status, which the picklist defaults to Queued).
            const scheduled = fieldValue(record, 'Scheduled_At__c');
            return scheduled
                ? mark({ label: labels.statusScheduled, icon: 'utility:event' })
                : mark({ label: labels.statusQueued, icon: 'utility:clock' });
        }
    }
}

/** What the bubble says: the body, or a short description of a template or media message. */
export function messageText(record, labels) {
    const body = fieldValue(record, 'Body__c');
    const type = fieldValue(record, 'Message_Type__c');
    if (type === 'Template') {
        const name = fieldValue(record, 'Template_Name__c');
        return body || (name ? formatLabel(labels.templateNamed, name) : labels.templateMessage);
    }
    if (type && type !== 'Text') {
        const kind = displayValue(record, 'Message_Type__c');
        const filename = fieldValue(record, 'Media_Filename__c');
        const label = filename ? formatLabel(labels.mediaNamed, kind, filename) : kind;
        return body ? `[${label}] ${body}` : `[${label}]`;
    }
    return body || '';
}

/** The first words of a message, to name it to assistive technology ("Cancel the message …"). */
export function snippet(text, max = 40) {
    const flat = String(text ?? '')
        .replace(/\s+/g, ' ')
        .trim();
    return flat.length <= max ? flat : `${flat.slice(0, max - 1).trimEnd()}…`;
}

/**
 * The conversation as bubbles, oldest first. Ties keep a stable order (by record name / id),
 * so the timeline does not jump when records arrive in a different order.
 */
export function buildTimeline(records, labels) {
    const items = (records || []).map((record) => {
        const inbound = isInbound(record);
        const mark = ticks(record, labels);
        const at = messageTime(record);
        const text = messageText(record, labels);
        const failed = Boolean(mark && mark.failed);
        return {
            id: recordId(record),
            name: fieldValue(record, 'Name'),
            side: inbound ? 'inbound' : 'outbound',
            inbound,
            at,
            atIso: at === null ? null : new Date(at).toISOString(),
            text,
            sideLabel: inbound ? labels.fromCustomer : labels.toCustomer,
            mediaUrl: fieldValue(record, 'Media_URL__c'),
            ticks: mark,
            failed,
            note: mark ? mark.note : null,
            cancelable: Boolean(mark && mark.cancelable),
            cancelLabel: formatLabel(labels.cancelMessage, snippet(text) || fieldValue(record, 'Name') || ''),
            rowClass: `row row_${inbound ? 'inbound' : 'outbound'}`,
            bubbleClass: `bubble bubble_${inbound ? 'inbound' : 'outbound'}${failed ? ' bubble_failed' : ''}`
        };
    });
    const key = (item) => String(item.name ?? item.id ?? '');
    items.sort((a, b) => {
        const byTime = (a.at ?? Number.MAX_SAFE_INTEGER) - (b.at ?? Number.MAX_SAFE_INTEGER);
        return byTime !== 0 ? byTime : key(a).localeCompare(key(b));
    });
    return items;
}

/** "3 h 12 min", "45 min", "less than 1 min" (in the labels' language). */
export function formatDuration(ms, labels) {
    const minutes = Math.floor(ms / MINUTE);
    if (minutes < 1) {
        return labels.lessThanMinute;
    }
    const hours = Math.floor(minutes / 60);
    const rest = minutes % 60;
    if (hours === 0) {
        return formatLabel(labels.minutes, rest);
    }
    return rest === 0 ? formatLabel(labels.hours, hours) : formatLabel(labels.hoursMinutes, hours, rest);
}

/**
 * The customer to answer and the number to answer from: the latest inbound message's From_Phone__c
 * and Business_Number_Id__c (the customer last wrote there, so its window is the one that counts),
 * else the latest outbound message's To_Phone__c and Business_Number_Id__c. Nulls when unknown
 * (the composer then reads the record's phone and sfwa's default number).
 */
export function replyTarget(records) {
    const byTime = [...(records || [])].sort((a, b) => (messageTime(b) ?? 0) - (messageTime(a) ?? 0));
    const inbound = byTime.find((record) => isInbound(record) && fieldValue(record, 'From_Phone__c'));
    if (inbound) {
        return {
            toPhone: fieldValue(inbound, 'From_Phone__c'),
            businessNumberId: fieldValue(inbound, 'Business_Number_Id__c')
        };
    }
    const outbound = byTime.find((record) => !isInbound(record) && fieldValue(record, 'To_Phone__c'));
    if (outbound) {
        return {
            toPhone: fieldValue(outbound, 'To_Phone__c'),
            businessNumberId: fieldValue(outbound, 'Business_Number_Id__c')
        };
    }
    return { toPhone: null, businessNumberId: null };
}

/**
 * The customer-service window, from the latest inbound message (to `businessNumberId` when one is
 * given: each business number has its own window): its Window_Expires_At__c, or Received_At__c +
 * 24 h when sfwa has not written an expiry. Returns { open, expiresAt, remainingMs, label,
 * className }.
 */
export function windowState(records, now, labels, businessNumberId = null) {
    let latest = null;
    for (const record of records || []) {
        if (!isInbound(record)) {
            continue;
        }
        const number = fieldValue(record, 'Business_Number_Id__c');
        if (businessNumberId && number && number !== businessNumberId) {
            continue;
        }
        const received = messageTime(record);
        const expires =
            toMillis(fieldValue(record, 'Window_Expires_At__c')) ??
            (received === null ? null : received + WINDOW_MS);
        if (expires !== null && (latest === null || expires > latest)) {
            latest = expires;
        }
    }
    if (latest !== null && latest > now) {
        const remainingMs = latest - now;
        return {
            open: true,
            expiresAt: latest,
            remainingMs,
            label: formatLabel(labels.windowOpen, formatDuration(remainingMs, labels)),
            className: 'window window_open'
        };
    }
    return {
        open: false,
        expiresAt: latest,
        remainingMs: 0,
        label: latest === null ? labels.windowNeverOpened : labels.windowClosed,
        className: 'window window_closed'
    };
}

/** Everything the component renders, from the records and the time. */
export function buildConversation(records, now, labels) {
    const timeline = buildTimeline(records, labels);
    const target = replyTarget(records);
    return {
        timeline,
        isEmpty: timeline.length === 0,
        target,
        window: windowState(records, now, labels, target.businessNumberId)
    };
}

/**
 * The newest page and the older pages as one list of records, each once: a message can show up
 * on two pages when new ones arrived between fetching them (the pages shift), and the newest
 * page's copy is the fresher one.
 */
export function mergePages(newest, olderPages) {
    const seen = new Set();
    const merged = [];
    for (const record of [...(newest || []), ...(olderPages || []).flat()]) {
        const id = recordId(record);
        if (!seen.has(id)) {
            seen.add(id);
            merged.push(record);
        }
    }
    return merged;
}

/**
 * What the refresh compares to tell "something changed" from "nothing new": each record's id,
 * Status and SystemModstamp (which moves on every write, sfwa's write-backs included).
 */
export function refreshSignature(records) {
    return (records || [])
        .map((record) => `${recordId(record)}:${fieldValue(record, 'Status__c') ?? ''}:${fieldValue(record, 'SystemModstamp') ?? ''}`)
        .join('|');
}

/**
 * The wait before the next refresh: back to 5 s after a change (or at the start), otherwise
 * twice the last wait, at most 60 s (5 → 10 → 20 → 40 → 60 → 60 …).
 */
export function nextRefreshDelay(previousMs, changed) {
    if (changed || !previousMs) {
        return REFRESH_MIN_MS;
    }
    return Math.min(previousMs * 2, REFRESH_MAX_MS);
}

/** Whether the scroll region shows its last message (the rep is not reading older ones). */
export function isAtBottom({ scrollTop, scrollHeight, clientHeight }) {
    return scrollHeight - scrollTop - clientHeight <= BOTTOM_SLACK_PX;
}

/**
 * A UI API error in words: the field errors and page errors of a failed updateRecord (a validation
 * rule's message lands in fieldErrors when it names a field), else the error's message, else the
 * fallback.
 */
export function errorText(error, fallback) {
    if (!error) {
        return fallback;
    }
    const body = error.body ?? error;
    if (Array.isArray(body)) {
        const messages = body.map((entry) => entry && entry.message).filter(Boolean);
        return messages.length ? messages.join(', ') : fallback;
    }
    const output = body && body.output;
    if (output) {
        const messages = (output.errors || []).map((entry) => entry.message);
        for (const entries of Object.values(output.fieldErrors || {})) {
            messages.push(...entries.map((entry) => entry.message));
        }
        const words = messages.filter(Boolean);
        if (words.length) {
            return words.join(', ');
        }
    }
    return (body && body.message) || error.message || fallback;
}
