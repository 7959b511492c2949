import {
    buildConversation,
    buildTimeline,
    fieldValue,
    FIELDS,
    formatDuration,
    messageText,
    ticks,
    windowState
} from '../conversation';
import { inbound, outbound } from './fixtures';

const NOW = Date.parse('2026-05-14T12:00:00.000Z');
const at = (iso) => `2026-05-14T${iso}.000Z`;
const MIN = 60 * 1000;

describe('fieldValue', () => {
    it('reads UI API records and plain objects alike', () => {
        expect(fieldValue({ fields: { Body__c: { value: 'hi' } } }, 'Body__c')).toBe('hi');
        expect(fieldValue({ Body__c: 'hi' }, 'Body__c')).toBe('hi');
        expect(fieldValue({ fields: {} }, 'Body__c')).toBeNull();
        expect(fieldValue(null, 'Body__c')).toBeNull();
    });

    it('asks only for qualified WhatsApp_Message__c fields', () => {
        expect(FIELDS.every((f) => f.startsWith('WhatsApp_Message__c.'))).toBe(true);
        expect(FIELDS).toContain('WhatsApp_Message__c.Error_Message__c');
        expect(FIELDS).toContain('WhatsApp_Message__c.Window_Expires_At__c');
    });
});

describe('buildTimeline', () => {
    it('puts messages oldest first, inbound left and outbound right', () => {
        const reply = outbound({ Body__c: 'Yes, 3 pm works', Status__c: 'Read', CreatedDate: at('10:05:00'), Sent_At__c: at('10:05:02') });
        const question = inbound({ Body__c: 'Can we meet?', CreatedDate: at('10:00:01'), Received_At__c: at('10:00:00') });
        const followUp = inbound({ Body__c: 'Great', CreatedDate: at('10:07:00'), Received_At__c: at('10:06:59') });
        const timeline = buildTimeline([followUp, reply, question]);
        expect(timeline.map((m) => m.text)).toEqual(['Can we meet?', 'Yes, 3 pm works', 'Great']);
        expect(timeline.map((m) => m.side)).toEqual(['inbound', 'outbound', 'inbound']);
        expect(timeline[0].rowClass).toBe('row row_inbound');
        expect(timeline[1].rowClass).toBe('row row_outbound');
        expect(timeline[1].atIso).toBe(at('10:05:02'));
    });

    it('places inbound by when the customer sent it, not when the record was created', () => {
        // sfwa may create the inbound record late (e.g. after an outage); Meta's timestamp decides.
        const late = inbound({ Body__c: 'first', Received_At__c: at('09:00:00'), CreatedDate: at('11:00:00') });
        const sent = outbound({ Body__c: 'second', Status__c: 'Sent', CreatedDate: at('10:00:00'), Sent_At__c: at('10:00:01') });
        expect(buildTimeline([sent, late]).map((m) => m.text)).toEqual(['first', 'second']);
    });

    it('places queued and failed outbound messages at their creation time', () => {
        const queued = outbound({ Body__c: 'queued', CreatedDate: at('11:30:00') });
        const failed = outbound({ Body__c: 'failed', Status__c: 'Failed', CreatedDate: at('11:00:00'), Error_Code__c: 'INVALID_PHONE' });
        const received = inbound({ Body__c: 'hello', Received_At__c: at('11:15:00') });
        expect(buildTimeline([queued, received, failed]).map((m) => m.text)).toEqual(['failed', 'hello', 'queued']);
    });

    it('keeps a stable order for messages with the same time', () => {
        const a = outbound({ Name: 'WAM-000010', Body__c: 'a', CreatedDate: at('10:00:00') });
        const b = outbound({ Name: 'WAM-000011', Body__c: 'b', CreatedDate: at('10:00:00') });
        expect(buildTimeline([b, a]).map((m) => m.text)).toEqual(['a', 'b']);
        expect(buildTimeline([a, b]).map((m) => m.text)).toEqual(['a', 'b']);
    });

    it('is empty for no records', () => {
        expect(buildTimeline([])).toEqual([]);
        expect(buildTimeline(undefined)).toEqual([]);
    });
});

describe('messageText', () => {
    it('shows the body, a template name or the media kind', () => {
        expect(messageText(outbound({ Body__c: 'Hi' }))).toBe('Hi');
        expect(messageText(outbound({ Message_Type__c: 'Template', Template_Name__c: 'appointment_reminder' }))).toBe(
            'Template: appointment_reminder'
        );
        expect(messageText(outbound({ Message_Type__c: 'Document', Media_Filename__c: 'invoice.pdf', Body__c: 'Your invoice' }))).toBe(
            '[Document: invoice.pdf] Your invoice'
        );
        expect(messageText(inbound({ Message_Type__c: 'Image' }))).toBe('[Image]');
    });
});

describe('ticks', () => {
    it('shows one tick for sent, two for delivered, two highlighted for read', () => {
        const sent = ticks(outbound({ Status__c: 'Sent' }));
        const delivered = ticks(outbound({ Status__c: 'Delivered' }));
        const read = ticks(outbound({ Status__c: 'Read' }));
        expect(sent).toMatchObject({ symbol: '✓', label: 'Sent', failed: false });
        expect(delivered).toMatchObject({ symbol: '✓✓', label: 'Delivered', failed: false });
        expect(read).toMatchObject({ symbol: '✓✓', label: 'Read', failed: false });
        expect(read.className).toContain('ticks_read');
        expect(delivered.className).not.toContain('ticks_read');
        expect(sent.className).not.toContain('ticks_read');
    });

    it('shows a failed message with the reason a rep can act on', () => {
        const failed = ticks(
            outbound({
                Status__c: 'Failed',
                Error_Code__c: 'OUTSIDE_SESSION_WINDOW',
                Error_Message__c: 'The customer has not written in 24 hours: send a template instead.'
            })
        );
        expect(failed).toMatchObject({
            label: 'Failed',
            failed: true,
            reason: 'The customer has not written in 24 hours: send a template instead.'
        });
        expect(failed.className).toContain('ticks_failed');
    });

    it('falls back to the error code, then to a generic reason', () => {
        expect(ticks(outbound({ Status__c: 'Failed', Error_Code__c: 'WA_131026' })).reason).toBe('WA_131026');
        expect(ticks(outbound({ Status__c: 'Failed' })).reason).toBe('The message could not be sent.');
    });

    it('shows queued, scheduled and sending messages as pending, and no ticks on inbound', () => {
        expect(ticks(outbound({ Status__c: 'Queued' }))).toMatchObject({ label: 'Queued', failed: false });
        expect(ticks(outbound({ Status__c: 'Queued', Scheduled_At__c: at('18:00:00') }))).toMatchObject({ label: 'Scheduled' });
        expect(ticks(outbound({ Status__c: 'Sending' }))).toMatchObject({ label: 'Sending' });
        expect(ticks(inbound({}))).toBeNull();
    });
});

describe('formatDuration', () => {
    it('reads like "3 h 12 min"', () => {
        expect(formatDuration((3 * 60 + 12) * MIN)).toBe('3 h 12 min');
        expect(formatDuration((3 * 60 + 12) * MIN + 59 * 1000)).toBe('3 h 12 min');
        expect(formatDuration(45 * MIN)).toBe('45 min');
        expect(formatDuration(2 * 60 * MIN)).toBe('2 h');
        expect(formatDuration(20 * 1000)).toBe('less than 1 min');
    });
});

describe('windowState', () => {
    it('is open with the remaining time from the latest inbound Window_Expires_At__c', () => {
        const records = [
            inbound({ Received_At__c: at('08:00:00'), Window_Expires_At__c: '2026-05-15T08:00:00.000Z' }),
            inbound({ Received_At__c: '2026-05-13T15:12:00.000Z', Window_Expires_At__c: '2026-05-14T15:12:00.000Z' }),
            outbound({ Status__c: 'Read', Sent_At__c: at('11:00:00'), Window_Expires_At__c: '2026-05-14T13:00:00.000Z' })
        ];
        const state = windowState(records, Date.parse('2026-05-15T04:48:00.000Z'));
        expect(state.open).toBe(true);
        expect(state.label).toBe('Window open for 3 h 12 min');
        expect(state.remainingMs).toBe((3 * 60 + 12) * MIN);
        expect(state.className).toContain('window_open');
    });

    it('falls back to Received_At__c + 24 h when no expiry was written', () => {
        const records = [inbound({ Received_At__c: '2026-05-13T15:12:00.000Z' })];
        expect(windowState(records, NOW).label).toBe('Window open for 3 h 12 min');
    });

    it('is closed once the window has expired: use a template', () => {
        const records = [inbound({ Received_At__c: '2026-05-13T11:00:00.000Z', Window_Expires_At__c: '2026-05-14T11:00:00.000Z' })];
        const state = windowState(records, NOW);
        expect(state.open).toBe(false);
        expect(state.label).toBe('Window closed: use a template');
        expect(state.className).toContain('window_closed');
    });

    it('is closed exactly at expiry', () => {
        const records = [inbound({ Window_Expires_At__c: new Date(NOW).toISOString() })];
        expect(windowState(records, NOW).open).toBe(false);
    });

    it('ignores outbound messages: only the customer opens the window', () => {
        const records = [outbound({ Status__c: 'Read', Sent_At__c: at('11:59:00'), Window_Expires_At__c: '2026-05-15T11:59:00.000Z' })];
        const state = windowState(records, NOW);
        expect(state.open).toBe(false);
        expect(state.label).toBe('Window closed: the customer has not written yet, use a template');
    });
});

describe('buildConversation', () => {
    it('describes an empty conversation', () => {
        const view = buildConversation([], NOW);
        expect(view.isEmpty).toBe(true);
        expect(view.timeline).toEqual([]);
        expect(view.window.open).toBe(false);
    });

    it('combines the timeline and the window', () => {
        const view = buildConversation([inbound({ Body__c: 'hi', Received_At__c: at('11:00:00') })], NOW);
        expect(view.isEmpty).toBe(false);
        expect(view.timeline).toHaveLength(1);
        expect(view.window.label).toBe('Window open for 23 h');
    });
});
