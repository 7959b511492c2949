/**
 * Pure logic behind the whatsappSendAction quick action: the customer-service window and the
 * business number, from the record's WhatsApp messages as getRelatedListRecords returns them.
 * No LWC, no clock (`now` is passed in), so Jest tests it directly.
 */

export const OBJECT = 'WhatsApp_Message__c';

/** The child relationship of the Contact__c, Lead__c, Case__c and Account__c lookups. */
export const RELATED_LIST_ID = 'WhatsApp_Messages__r';

export const FIELDS = [
    'Direction__c',
    'Received_At__c',
    'Window_Expires_At__c',
    'Business_Number_Id__c',
    'CreatedDate'
].map((field) => `${OBJECT}.${field}`);

/**
 * How many of the latest messages the action reads: the window depends only on the latest inbound
 * message, and a conversation with this many newer outbound messages since has its answer.
 */
export const PAGE_SIZE = 50;

/** WhatsApp's customer-service window: 24 hours after the customer's last message. */
export const WINDOW_MS = 24 * 60 * 60 * 1000;

function value(record, name) {
    const field = record && record.fields ? record.fields[name] : undefined;
    return field === undefined || field === null ? null : (field.value ?? null);
}

function millis(text) {
    if (text === null || text === undefined || text === '') {
        return null;
    }
    const parsed = Date.parse(text);
    return Number.isNaN(parsed) ? null : parsed;
}

/**
 * The window from the records: `{ open, expiresAt, businessNumberId }`. The window closes at the
 * latest inbound message's Window_Expires_At__c (or its Received_At__c / CreatedDate + 24 h). The
 * business number is that of the latest inbound message (the number the customer wrote to), else
 * of the latest message.
 */
export function windowFromMessages(records, now) {
    let expiresAt = null;
    let latestInbound = null;
    let latestAny = null;
    for (const record of records || []) {
        const created = millis(value(record, 'CreatedDate'));
        const inbound = value(record, 'Direction__c') === 'Inbound';
        const at = (inbound ? millis(value(record, 'Received_At__c')) : null) ?? created ?? 0;
        if (latestAny === null || at > latestAny.at) {
            latestAny = { at, record };
        }
        if (!inbound) {
            continue;
        }
        if (latestInbound === null || at > latestInbound.at) {
            latestInbound = { at, record };
        }
        const received = millis(value(record, 'Received_At__c')) ?? created;
        const expires = millis(value(record, 'Window_Expires_At__c')) ?? (received === null ? null : received + WINDOW_MS);
        if (expires !== null && (expiresAt === null || expires > expiresAt)) {
            expiresAt = expires;
        }
    }
    const source = latestInbound ?? latestAny;
    return {
        open: expiresAt !== null && expiresAt > now,
        expiresAt,
        businessNumberId: source ? value(source.record, 'Business_Number_Id__c') : null
    };
}

/** The words of a wire error (UI API body message(s)), or the fallback. */
export function wireErrorText(error, fallback) {
    const body = error && error.body;
    if (Array.isArray(body)) {
        const text = body
            .map((e) => e && e.message)
            .filter(Boolean)
            .join(' ');
        return text || fallback;
    }
    return (body && body.message) || (error && error.message) || fallback;
}
