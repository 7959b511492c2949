import { windowFromMessages, wireErrorText } from '../sendAction';

const NOW = Date.parse('2026-05-14T12:00:00.000Z');

function message(values) {
    const fields = {};
    for (const [name, value] of Object.entries(values)) {
        fields[name] = { value, displayValue: null };
    }
    return { apiName: 'WhatsApp_Message__c', id: 'a00', fields };
}

describe('sendAction.js', () => {
    it("opens the window until the latest inbound message's Window_Expires_At__c", () => {
        const state = windowFromMessages(
            [
                message({ Direction__c: 'Inbound', Received_At__c: '2026-05-13T08:00:00Z', Window_Expires_At__c: '2026-05-14T08:00:00Z' }),
                message({ Direction__c: 'Inbound', Received_At__c: '2026-05-14T10:00:00Z', Window_Expires_At__c: '2026-05-15T10:00:00Z' })
            ],
            NOW
        );
        expect(state).toEqual({ open: true, expiresAt: Date.parse('2026-05-15T10:00:00Z'), businessNumberId: null });
    });

    it('counts 24 hours from Received_At__c when sfwa wrote no expiry', () => {
        const state = windowFromMessages([message({ Direction__c: 'Inbound', Received_At__c: '2026-05-13T12:30:00Z' })], NOW);
        expect(state.open).toBe(true);
        expect(state.expiresAt).toBe(Date.parse('2026-05-14T12:30:00Z'));
    });

    it('is closed after 24 hours, and when the customer never wrote', () => {
        expect(windowFromMessages([message({ Direction__c: 'Inbound', Received_At__c: '2026-05-13T11:59:00Z' })], NOW).open).toBe(false);
        expect(windowFromMessages([message({ Direction__c: 'Outbound', CreatedDate: '2026-05-14T11:00:00Z' })], NOW)).toEqual({
            open: false,
            expiresAt: null,
            businessNumberId: null
        });
    });

    it('takes the business number the customer last wrote to, else that of the latest message', () => {
        const records = [
            message({ Direction__c: 'Outbound', CreatedDate: '2026-05-14T11:00:00Z', Business_Number_Id__c: '222' }),
            message({ Direction__c: 'Inbound', Received_At__c: '2026-05-14T10:00:00Z', Business_Number_Id__c: '111' })
        ];
        expect(windowFromMessages(records, NOW).businessNumberId).toBe('111');
        expect(windowFromMessages([records[0]], NOW).businessNumberId).toBe('222');
    });

    it('words a wire error from its body', () => {
        expect(wireErrorText({ body: { message: 'No access.' } }, 'x')).toBe('No access.');
        expect(wireErrorText({ body: [{ message: 'a' }, { message: 'b' }] }, 'x')).toBe('a b');
        expect(wireErrorText({}, 'fallback')).toBe('fallback');
    });
});
