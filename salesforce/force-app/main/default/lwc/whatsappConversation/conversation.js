/**
 * Pure logic behind the whatsappConversation component: no LWC, no wire adapters, no clock.
 * Every function takes the records (as the UI API returns them, or plain objects) and `now`
 * (epoch milliseconds), so Jest can test them directly.
 */

export const OBJECT = 'WhatsApp_Message__c';

/** The child relationship from Contact, Lead and Case (Contact__c, Lead__c, Case__c lookups). */
export const RELATED_LIST_ID = 'WhatsApp_Messages__r';

/** The fields the component reads, qualified as getRelatedListRecords wants them. */
export const FIELDS = [
    'Name',
    'CreatedDate',
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
    'Error_Message__c'
].map((field) => `${OBJECT}.${field}`);

/** WhatsApp's customer-service window: 24 hours after the customer's last message. */
export const WINDOW_MS = 24 * 60 * 60 * 1000;

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;

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
 * The delivery marks under an outbound bubble, WhatsApp style.
 * Returns { symbol, label, className, failed, reason }; inbound messages get none (null).
 */
export function ticks(record) {
    if (isInbound(record)) {
        return null;
    }
    const status = fieldValue(record, 'Status__c');
    switch (status) {
        case 'Sent':
            return { symbol: '✓', label: 'Sent', className: 'ticks', failed: false, reason: null };
        case 'Delivered':
            return { symbol: '✓✓', label: 'Delivered', className: 'ticks', failed: false, reason: null };
        case 'Read':
            return { symbol: '✓✓', label: 'Read', className: 'ticks ticks_read', failed: false, reason: null };
        case 'Failed': {
            const reason =
                fieldValue(record, 'Error_Message__c') ||
                fieldValue(record, 'Error_Code__c') ||
                'The message could not be sent.';
            return { symbol: '!', label: 'Failed', className: 'ticks ticks_failed', failed: true, reason };
        }
        case 'Sending':
            return { symbol: '…', label: 'Sending', className: 'ticks ticks_pending', failed: false, reason: null };
        default: {
            const scheduled = fieldValue(record, 'Scheduled_At__c');
            return {
                symbol: '🕓',
                label: scheduled ? 'Scheduled' : 'Queued',
                className: 'ticks ticks_pending',
                failed: false,
                reason: null
            };
        }
    }
}

/** What the bubble says: the body, or a short description of a template or media message. */
export function messageText(record) {
    const body = fieldValue(record, 'Body__c');
    const type = fieldValue(record, 'Message_Type__c');
    if (type === 'Template') {
        const name = fieldValue(record, 'Template_Name__c');
        return body || (name ? `Template: ${name}` : 'Template message');
    }
    if (type && type !== 'Text') {
        const filename = fieldValue(record, 'Media_Filename__c');
        const label = filename ? `${type}: ${filename}` : type;
        return body ? `[${label}] ${body}` : `[${label}]`;
    }
    return body || '';
}

/**
 * The conversation as bubbles, oldest first. Ties keep a stable order (by record name / id),
 * so the timeline does not jump when records arrive in a different order.
 */
export function buildTimeline(records) {
    const items = (records || []).map((record) => {
        const inbound = isInbound(record);
        const mark = ticks(record);
        const at = messageTime(record);
        return {
            id: recordId(record),
            name: fieldValue(record, 'Name'),
            side: inbound ? 'inbound' : 'outbound',
            inbound,
            at,
            atIso: at === null ? null : new Date(at).toISOString(),
            text: messageText(record),
            mediaUrl: fieldValue(record, 'Media_URL__c'),
            ticks: mark,
            failed: Boolean(mark && mark.failed),
            rowClass: `row row_${inbound ? 'inbound' : 'outbound'}`,
            bubbleClass: `bubble bubble_${inbound ? 'inbound' : 'outbound'}${mark && mark.failed ? ' bubble_failed' : ''}`
        };
    });
    const key = (item) => String(item.name ?? item.id ?? '');
    items.sort((a, b) => {
        const byTime = (a.at ?? Number.MAX_SAFE_INTEGER) - (b.at ?? Number.MAX_SAFE_INTEGER);
        return byTime !== 0 ? byTime : key(a).localeCompare(key(b));
    });
    return items;
}

/** "3 h 12 min", "45 min", "less than 1 min". */
export function formatDuration(ms) {
    const minutes = Math.floor(ms / MINUTE);
    if (minutes < 1) {
        return 'less than 1 min';
    }
    const hours = Math.floor(minutes / 60);
    const rest = minutes % 60;
    if (hours === 0) {
        return `${rest} min`;
    }
    return rest === 0 ? `${hours} h` : `${hours} h ${rest} min`;
}

/**
 * The customer-service window, from the latest inbound message: its Window_Expires_At__c, or
 * Received_At__c + 24 h when sfwa has not written an expiry. Returns
 * { open, expiresAt, remainingMs, label, className }.
 */
export function windowState(records, now) {
    let latest = null;
    for (const record of records || []) {
        if (!isInbound(record)) {
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
            label: `Window open for ${formatDuration(remainingMs)}`,
            className: 'window window_open'
        };
    }
    return {
        open: false,
        expiresAt: latest,
        remainingMs: 0,
        label:
            latest === null
                ? 'Window closed: the customer has not written yet, use a template'
                : 'Window closed: use a template',
        className: 'window window_closed'
    };
}

/** Everything the component renders, from the records and the time. */
export function buildConversation(records, now) {
    const timeline = buildTimeline(records);
    return {
        timeline,
        isEmpty: timeline.length === 0,
        window: windowState(records, now)
    };
}
