import {
    buildConversation,
    buildTimeline,
    errorText,
    fieldValue,
    FIELDS,
    formatDuration,
    formatLabel,
    isAtBottom,
    mergePages,
    messageText,
    nextRefreshDelay,
    refreshSignature,
    replyTarget,
    snippet,
    ticks,
    windowState
} from '../conversation';
import { LABELS } from '../labels';
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
        const timeline = buildTimeline([followUp, reply, question], LABELS);
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
        expect(buildTimeline([sent, late], LABELS).map((m) => m.text)).toEqual(['first', 'second']);
    });

    it('places queued and failed outbound messages at their creation time', () => {
        const queued = outbound({ Body__c: 'queued', CreatedDate: at('11:30:00') });
        const failed = outbound({ Body__c: 'failed', Status__c: 'Failed', CreatedDate: at('11:00:00'), Error_Code__c: 'INVALID_PHONE' });
        const received = inbound({ Body__c: 'hello', Received_At__c: at('11:15:00') });
        expect(buildTimeline([queued, received, failed], LABELS).map((m) => m.text)).toEqual(['failed', 'hello', 'queued']);
    });

    it('keeps a stable order for messages with the same time', () => {
        const a = outbound({ Name: 'WAM-000010', Body__c: 'a', CreatedDate: at('10:00:00') });
        const b = outbound({ Name: 'WAM-000011', Body__c: 'b', CreatedDate: at('10:00:00') });
        expect(buildTimeline([b, a], LABELS).map((m) => m.text)).toEqual(['a', 'b']);
        expect(buildTimeline([a, b], LABELS).map((m) => m.text)).toEqual(['a', 'b']);
    });

    it('is empty for no records', () => {
        expect(buildTimeline([], LABELS)).toEqual([]);
        expect(buildTimeline(undefined, LABELS)).toEqual([]);
    });
});

describe('messageText', () => {
    it('shows the body, a template name or the media kind', () => {
        expect(messageText(outbound({ Body__c: 'Hi' }), LABELS)).toBe('Hi');
        expect(messageText(outbound({ Message_Type__c: 'Template', Template_Name__c: 'appointment_reminder' }), LABELS)).toBe(
            'Template: appointment_reminder'
        );
        expect(messageText(outbound({ Message_Type__c: 'Document', Media_Filename__c: 'invoice.pdf', Body__c: 'Your invoice' }), LABELS)).toBe(
            '[Document: invoice.pdf] Your invoice'
        );
        expect(messageText(inbound({ Message_Type__c: 'Image' }), LABELS)).toBe('[Image]');
    });
});

describe('ticks', () => {
    it('gives every status its own icon shape with the status as alternative text', () => {
        const statuses = ['Queued', 'Waiting for Reply', 'Sending', 'Sent', 'Delivered', 'Read', 'Failed', 'Canceled'];
        const marks = statuses.map((status) => ticks(outbound({ Status__c: status }), LABELS));
        expect(marks.map((m) => [m.label, m.icon, m.double])).toEqual([
            ['Queued', 'utility:clock', false],
            ['Waiting for Reply', 'utility:pause', false],
            ['Sending', 'utility:sync', false],
            ['Sent', 'utility:check', false],
            ['Delivered', 'utility:check', true],
            ['Read', 'utility:preview', false],
            ['Failed', 'utility:error', false],
            ['Canceled', 'utility:ban', false]
        ]);
        // Shape, not colour, tells them apart: no two statuses look the same.
        const shapes = marks.map((m) => `${m.icon}${m.double ? ' x2' : ''}`);
        expect(new Set(shapes).size).toBe(statuses.length);
    });

    it('shows a scheduled queued message with a calendar instead of a clock', () => {
        expect(ticks(outbound({ Status__c: 'Queued', Scheduled_At__c: at('18:00:00') }), LABELS)).toMatchObject({
            label: 'Scheduled',
            icon: 'utility:event'
        });
    });

    it('shows a failed message with the reason a rep can act on', () => {
        const failed = ticks(
            outbound({
                Status__c: 'Failed',
                Error_Code__c: 'OUTSIDE_SESSION_WINDOW',
                Error_Message__c: 'The customer has not written in 24 hours: send a template instead.'
            }),
            LABELS
        );
        expect(failed).toMatchObject({
            label: 'Failed',
            failed: true,
            variant: 'error',
            reason: 'The customer has not written in 24 hours: send a template instead.'
        });
    });

    it('falls back to the error code, then to a generic reason', () => {
        expect(ticks(outbound({ Status__c: 'Failed', Error_Code__c: 'WA_131026' }), LABELS).reason).toBe('WA_131026');
        expect(ticks(outbound({ Status__c: 'Failed' }), LABELS).reason).toBe('The message could not be sent.');
    });

    it('explains a waiting message and lets only queued and waiting ones be canceled', () => {
        expect(ticks(outbound({ Status__c: 'Waiting for Reply' }), LABELS).note).toBe(
            'Waiting for the customer to reply; sent after the template'
        );
        const cancelable = ['Queued', 'Waiting for Reply', 'Sending', 'Sent', 'Delivered', 'Read', 'Failed', 'Canceled'].filter(
            (status) => ticks(outbound({ Status__c: status }), LABELS).cancelable
        );
        expect(cancelable).toEqual(['Queued', 'Waiting for Reply']);
    });

    it('puts no status on inbound messages', () => {
        expect(ticks(inbound({}), LABELS)).toBeNull();
    });
});

describe('formatDuration', () => {
    it('reads like "3 h 12 min"', () => {
        expect(formatDuration((3 * 60 + 12) * MIN, LABELS)).toBe('3 h 12 min');
        expect(formatDuration((3 * 60 + 12) * MIN + 59 * 1000, LABELS)).toBe('3 h 12 min');
        expect(formatDuration(45 * MIN, LABELS)).toBe('45 min');
        expect(formatDuration(2 * 60 * MIN, LABELS)).toBe('2 h');
        expect(formatDuration(20 * 1000, LABELS)).toBe('less than 1 min');
    });
});

describe('windowState', () => {
    it('is open with the remaining time from the latest inbound Window_Expires_At__c', () => {
        const records = [
            inbound({ Received_At__c: at('08:00:00'), Window_Expires_At__c: '2026-05-15T08:00:00.000Z' }),
            inbound({ Received_At__c: '2026-05-13T15:12:00.000Z', Window_Expires_At__c: '2026-05-14T15:12:00.000Z' }),
            outbound({ Status__c: 'Read', Sent_At__c: at('11:00:00'), Window_Expires_At__c: '2026-05-14T13:00:00.000Z' })
        ];
        const state = windowState(records, Date.parse('2026-05-15T04:48:00.000Z'), LABELS);
        expect(state.open).toBe(true);
        expect(state.label).toBe('Window open for 3 h 12 min');
        expect(state.remainingMs).toBe((3 * 60 + 12) * MIN);
        expect(state.className).toContain('window_open');
    });

    it('falls back to Received_At__c + 24 h when no expiry was written', () => {
        const records = [inbound({ Received_At__c: '2026-05-13T15:12:00.000Z' })];
        expect(windowState(records, NOW, LABELS).label).toBe('Window open for 3 h 12 min');
    });

    it('is closed once the window has expired: use a template', () => {
        const records = [inbound({ Received_At__c: '2026-05-13T11:00:00.000Z', Window_Expires_At__c: '2026-05-14T11:00:00.000Z' })];
        const state = windowState(records, NOW, LABELS);
        expect(state.open).toBe(false);
        expect(state.label).toBe('Window closed: use a template');
        expect(state.className).toContain('window_closed');
    });

    it('is closed exactly at expiry', () => {
        const records = [inbound({ Window_Expires_At__c: new Date(NOW).toISOString() })];
        expect(windowState(records, NOW, LABELS).open).toBe(false);
    });

    it('ignores outbound messages: only the customer opens the window', () => {
        const records = [outbound({ Status__c: 'Read', Sent_At__c: at('11:59:00'), Window_Expires_At__c: '2026-05-15T11:59:00.000Z' })];
        const state = windowState(records, NOW, LABELS);
        expect(state.open).toBe(false);
        expect(state.label).toBe('Window closed: the customer has not written yet, use a template');
    });
});

describe('buildConversation', () => {
    it('describes an empty conversation', () => {
        const view = buildConversation([], NOW, LABELS);
        expect(view.isEmpty).toBe(true);
        expect(view.timeline).toEqual([]);
        expect(view.window.open).toBe(false);
    });

    it('combines the timeline and the window', () => {
        const view = buildConversation([inbound({ Body__c: 'hi', Received_At__c: at('11:00:00') })], NOW, LABELS);
        expect(view.isEmpty).toBe(false);
        expect(view.timeline).toHaveLength(1);
        expect(view.window.label).toBe('Window open for 23 h');
    });
});

describe('formatLabel', () => {
    it('fills the numbered placeholders of a Custom Label', () => {
        expect(formatLabel('Window open for {0}', '3 h')).toBe('Window open for 3 h');
        expect(formatLabel('{0} h {1} min', 3, 12)).toBe('3 h 12 min');
        expect(formatLabel('left {0} as is {1}', 'x')).toBe('left x as is {1}');
    });
});

describe('windowState per business number', () => {
    it('counts only the customer\'s messages to the number the rep answers from', () => {
        const records = [
            inbound({ Business_Number_Id__c: '111', Received_At__c: at('11:00:00') }),
            inbound({ Business_Number_Id__c: '222', Received_At__c: '2026-05-13T09:00:00.000Z' })
        ];
        expect(windowState(records, NOW, LABELS, '222').open).toBe(false);
        expect(windowState(records, NOW, LABELS, '111').label).toBe('Window open for 23 h');
    });
});

describe('replyTarget', () => {
    it('answers the latest inbound message: its sender from its business number', () => {
        const records = [
            inbound({ From_Phone__c: '+4915100000001', Business_Number_Id__c: '111', Received_At__c: at('09:00:00') }),
            inbound({ From_Phone__c: '+4915100000002', Business_Number_Id__c: '222', Received_At__c: at('10:00:00') }),
            outbound({ To_Phone__c: '+4915100000003', Business_Number_Id__c: '333', Sent_At__c: at('11:00:00') })
        ];
        expect(replyTarget(records)).toEqual({ toPhone: '+4915100000002', businessNumberId: '222' });
    });

    it('uses the latest outbound message when the customer has not written', () => {
        const records = [
            outbound({ To_Phone__c: '+4915100000003', Business_Number_Id__c: '333', Sent_At__c: at('09:00:00') }),
            outbound({ To_Phone__c: '+4915100000004', Business_Number_Id__c: null, Sent_At__c: at('10:00:00') })
        ];
        expect(replyTarget(records)).toEqual({ toPhone: '+4915100000004', businessNumberId: null });
        expect(replyTarget([])).toEqual({ toPhone: null, businessNumberId: null });
    });
});

describe('nextRefreshDelay', () => {
    it('backs off 5, 10, 20, 40, 60 seconds while nothing changes, and stays at 60', () => {
        const delays = [];
        let delay = nextRefreshDelay(undefined, false);
        for (let i = 0; i < 7; i += 1) {
            delays.push(delay);
            delay = nextRefreshDelay(delay, false);
        }
        expect(delays).toEqual([5000, 10000, 20000, 40000, 60000, 60000, 60000]);
    });

    it('goes back to 5 seconds on a change', () => {
        expect(nextRefreshDelay(60000, true)).toBe(5000);
        expect(nextRefreshDelay(20000, true)).toBe(5000);
    });
});

describe('refreshSignature', () => {
    it('changes when a message arrives, changes status or is written to, and not otherwise', () => {
        const sent = outbound({ Status__c: 'Sent', SystemModstamp: at('10:00:00') });
        const base = refreshSignature([sent]);
        expect(refreshSignature([sent])).toBe(base);
        expect(refreshSignature([{ ...sent, fields: { ...sent.fields, Status__c: { value: 'Delivered' } } }])).not.toBe(base);
        expect(refreshSignature([{ ...sent, fields: { ...sent.fields, SystemModstamp: { value: at('10:00:05') } } }])).not.toBe(base);
        expect(refreshSignature([inbound({}), sent])).not.toBe(base);
    });
});

describe('mergePages', () => {
    it('keeps each message once, the newest page\'s copy first', () => {
        const shifted = outbound({ Status__c: 'Read' });
        const stale = { ...shifted, fields: { ...shifted.fields, Status__c: { value: 'Sent' } } };
        const older = inbound({});
        const merged = mergePages([shifted], [[stale, older]]);
        expect(merged).toHaveLength(2);
        expect(fieldValue(merged[0], 'Status__c')).toBe('Read');
        expect(merged[1]).toBe(older);
    });
});

describe('isAtBottom', () => {
    it('counts a rep within a few pixels of the end as at the bottom', () => {
        expect(isAtBottom({ scrollTop: 600, scrollHeight: 1000, clientHeight: 400 })).toBe(true);
        expect(isAtBottom({ scrollTop: 590, scrollHeight: 1000, clientHeight: 400 })).toBe(true);
        expect(isAtBottom({ scrollTop: 300, scrollHeight: 1000, clientHeight: 400 })).toBe(false);
    });
});

describe('snippet', () => {
    it('names a message by its first words', () => {
        expect(snippet('  Your   appointment\nis at 3 pm ')).toBe('Your appointment is at 3 pm');
        expect(snippet('a'.repeat(60), 10)).toBe('aaaaaaaaa…');
    });
});

describe('errorText', () => {
    it('says in words why the UI API refused, validation rule messages included', () => {
        const validation = {
            body: {
                message: 'An error occurred while trying to update the record. Please try again.',
                output: {
                    errors: [],
                    fieldErrors: {
                        Status__c: [
                            {
                                errorCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION',
                                message: 'Only a Queued or Waiting for Reply message can be canceled: this one is already with WhatsApp.'
                            }
                        ]
                    }
                }
            }
        };
        expect(errorText(validation, 'fallback')).toBe(
            'Only a Queued or Waiting for Reply message can be canceled: this one is already with WhatsApp.'
        );
        expect(errorText({ body: { output: { errors: [{ message: 'Record locked' }], fieldErrors: {} } } }, 'x')).toBe('Record locked');
        expect(errorText({ body: [{ message: 'a' }, { message: 'b' }] }, 'x')).toBe('a, b');
        expect(errorText({ body: { message: 'No access' } }, 'x')).toBe('No access');
        expect(errorText(new Error('offline'), 'x')).toBe('offline');
        expect(errorText(undefined, 'fallback')).toBe('fallback');
    });
});
