import { createElement } from 'lwc';
import WhatsappSendAction from 'c/whatsappSendAction';
import { getRelatedListRecords } from 'lightning/uiRelatedListApi';
import { createRecord, getRecord } from 'lightning/uiRecordApi';
import { getObjectInfo } from 'lightning/uiObjectInfoApi';
import { graphql } from 'lightning/graphql';

// sfdx-lwc-jest has no stub for lightning/actions: a CloseActionScreenEvent the test can see.
jest.mock(
    'lightning/actions',
    () => ({
        CloseActionScreenEvent: class CloseActionScreenEvent extends CustomEvent {
            constructor() {
                super('close_action_screen', { bubbles: true, composed: true });
            }
        }
    }),
    { virtual: true }
);

const NOW = Date.parse('2026-05-14T12:00:00.000Z');
const CONTACT_ID = '003000000000001AAA';

function uiRecord(apiName, id, values) {
    const fields = {};
    for (const [name, value] of Object.entries(values)) {
        fields[name] = { value, displayValue: null };
    }
    return { apiName, id, fields };
}

function messages(records) {
    return { records, count: records.length, nextPageToken: null, currentPageToken: '0', pageSize: 50 };
}

function inbound(values) {
    return uiRecord('WhatsApp_Message__c', 'a00000000000001AAA', { Direction__c: 'Inbound', ...values });
}

function mount() {
    const element = createElement('c-whatsapp-send-action', { is: WhatsappSendAction });
    element.recordId = CONTACT_ID;
    element.objectApiName = 'Contact';
    document.body.appendChild(element);
    return element;
}

/** Let promise callbacks and the re-render after them run (no timers involved). */
async function flush() {
    await Promise.resolve();
    await Promise.resolve();
    await Promise.resolve();
    await Promise.resolve();
    await Promise.resolve();
    await Promise.resolve();
}

const composerOf = (element) => element.shadowRoot.querySelector('c-whatsapp-composer');
const inComposer = (element, id) => composerOf(element).shadowRoot.querySelector(`[data-id="${id}"]`);

async function typeAndSend(element, text) {
    inComposer(element, 'body').dispatchEvent(new CustomEvent('change', { detail: { value: text } }));
    await flush();
    inComposer(element, 'send').click();
    await flush();
}

describe('c-whatsapp-send-action', () => {
    beforeEach(() => {
        jest.useFakeTimers();
        jest.setSystemTime(NOW);
        createRecord.mockResolvedValue({ id: 'a00000000000099AAA' });
    });

    afterEach(() => {
        while (document.body.firstChild) {
            document.body.removeChild(document.body.firstChild);
        }
        jest.useRealTimers();
        jest.clearAllMocks();
    });

    it("reads the record's WhatsApp messages to learn the window", async () => {
        mount();
        await flush();
        const config = getRelatedListRecords.getLastConfig();
        expect(config.parentRecordId).toBe(CONTACT_ID);
        expect(config.relatedListId).toBe('WhatsApp_Messages__r');
        expect(config.fields).toEqual(expect.arrayContaining(['WhatsApp_Message__c.Window_Expires_At__c', 'WhatsApp_Message__c.Received_At__c']));
    });

    it("opens the composer with the record's MobilePhone and the open window, and closes after the send", async () => {
        const element = mount();
        const closed = jest.fn();
        element.addEventListener('close_action_screen', closed);
        getRelatedListRecords.emit(
            messages([
                inbound({
                    Received_At__c: '2026-05-14T09:00:00.000Z',
                    Window_Expires_At__c: '2026-05-15T09:00:00.000Z',
                    Business_Number_Id__c: '106540352242922',
                    CreatedDate: '2026-05-14T09:00:01.000Z'
                })
            ])
        );
        await flush();
        getRecord.emit(uiRecord('Contact', CONTACT_ID, { MobilePhone: '+49 151 2345678', Phone: '+49 30 123' }));
        graphql.emit({ uiapi: { query: { WhatsApp_Template__c: { edges: [] } } } });
        getObjectInfo.emit({ apiName: 'WhatsApp_Message__c', fields: { Business_Number_Id__c: { createable: true } } });
        await flush();

        const composer = composerOf(element);
        expect(composer.recordId).toBe(CONTACT_ID);
        expect(composer.objectApiName).toBe('Contact');
        expect(composer.windowOpen).toBe(true);
        expect(composer.windowExpiresAt).toBe(Date.parse('2026-05-15T09:00:00.000Z'));
        expect(composer.businessNumberId).toBe('106540352242922');
        expect(inComposer(element, 'window-line').textContent).toBe('Window open: 21 h 0 min left');

        await typeAndSend(element, 'Hello from the action');

        expect(createRecord.mock.calls[0][0].fields).toEqual({
            Status__c: 'Queued',
            Message_Type__c: 'Text',
            Body__c: 'Hello from the action',
            To_Phone__c: '+49 151 2345678',
            Contact__c: CONTACT_ID,
            Business_Number_Id__c: '106540352242922'
        });
        expect(closed).toHaveBeenCalledTimes(1);
    });

    it('falls back to the Phone when the record has no MobilePhone', async () => {
        const element = mount();
        getRelatedListRecords.emit(messages([inbound({ Received_At__c: '2026-05-14T11:00:00.000Z' })]));
        await flush();
        getRecord.emit(uiRecord('Contact', CONTACT_ID, { MobilePhone: null, Phone: '+49 30 123' }));
        await flush();

        await typeAndSend(element, 'Hi');

        expect(createRecord.mock.calls[0][0].fields.To_Phone__c).toBe('+49 30 123');
    });

    it('opens with a closed window when the customer has not written in the last 24 hours', async () => {
        const element = mount();
        getRelatedListRecords.emit(messages([inbound({ Received_At__c: '2026-05-12T11:00:00.000Z' })]));
        await flush();
        expect(composerOf(element).windowOpen).toBe(false);
        expect(element.shadowRoot.querySelector('[data-id="window-unknown"]')).toBeNull();
    });

    it('treats the window as closed, and says so, when the messages cannot be read', async () => {
        const element = mount();
        getRelatedListRecords.error({ message: 'You do not have access to WhatsApp Messages.' });
        await flush();

        expect(composerOf(element).windowOpen).toBe(false);
        expect(element.shadowRoot.querySelector('[data-id="window-unknown"]').textContent).toBe(
            'The conversation could not be read (You do not have access to WhatsApp Messages.), so the window counts as closed: send a template.'
        );
    });

    it('closes when the rep cancels', async () => {
        const element = mount();
        const closed = jest.fn();
        element.addEventListener('close_action_screen', closed);
        getRelatedListRecords.emit(messages([]));
        await flush();

        inComposer(element, 'cancel').click();
        await flush();

        expect(closed).toHaveBeenCalledTimes(1);
        expect(createRecord).not.toHaveBeenCalled();
    });

    describe('accessibility (axe-core through sa11y)', () => {
        // sa11y runs axe asynchronously on real timers.
        async function expectAccessible(element) {
            jest.useRealTimers();
            await expect(element).toBeAccessible();
        }

        it('is accessible while the conversation loads', async () => {
            const element = mount();
            await flush();
            expect(composerOf(element)).toBeNull();
            await expectAccessible(element);
        });

        it('is accessible with the composer open on an open window', async () => {
            const element = mount();
            getRelatedListRecords.emit(messages([inbound({ Received_At__c: '2026-05-14T11:00:00.000Z' })]));
            await flush();
            getRecord.emit(uiRecord('Contact', CONTACT_ID, { MobilePhone: '+49 151 2345678' }));
            await flush();
            expect(composerOf(element).windowOpen).toBe(true);
            await expectAccessible(element);
        });

        it('is accessible when the window is unknown and the action says so', async () => {
            const element = mount();
            getRelatedListRecords.error({ message: 'No access.' });
            await flush();
            expect(element.shadowRoot.querySelector('[data-id="window-unknown"]')).not.toBeNull();
            await expectAccessible(element);
        });
    });
});
