import { createElement } from 'lwc';
import WhatsappConversation from 'c/whatsappConversation';
import { getRelatedListRecords } from 'lightning/uiRelatedListApi';
import { inbound, outbound, relatedList } from './fixtures';

const NOW = Date.parse('2026-05-14T12:00:00.000Z');

function mount() {
    const element = createElement('c-whatsapp-conversation', { is: WhatsappConversation });
    element.recordId = '003000000000001AAA';
    element.objectApiName = 'Contact';
    document.body.appendChild(element);
    return element;
}

// Let the re-render after a wire emit happen.
const flush = () => Promise.resolve();

const all = (element, id) => Array.from(element.shadowRoot.querySelectorAll(`[data-id="${id}"]`));
const one = (element, id) => element.shadowRoot.querySelector(`[data-id="${id}"]`);

describe('c-whatsapp-conversation', () => {
    beforeEach(() => {
        jest.useFakeTimers();
        jest.setSystemTime(NOW);
    });

    afterEach(() => {
        while (document.body.firstChild) {
            document.body.removeChild(document.body.firstChild);
        }
        jest.useRealTimers();
        jest.clearAllMocks();
    });

    it('asks the UI API for the WhatsApp_Messages__r related list of the record', async () => {
        mount();
        await flush();
        const config = getRelatedListRecords.getLastConfig();
        expect(config.parentRecordId).toBe('003000000000001AAA');
        expect(config.relatedListId).toBe('WhatsApp_Messages__r');
        expect(config.fields).toContain('WhatsApp_Message__c.Status__c');
        expect(config.fields).toContain('WhatsApp_Message__c.Received_At__c');
    });

    it('shows a spinner until the messages arrive', () => {
        const element = mount();
        expect(element.shadowRoot.querySelector('lightning-spinner')).not.toBeNull();
        expect(all(element, 'message')).toHaveLength(0);
    });

    it('renders the conversation as a timeline with sides, ticks and failure reasons', async () => {
        const element = mount();
        getRelatedListRecords.emit(
            relatedList([
                outbound({
                    Body__c: 'Sorry, could not reach you',
                    Status__c: 'Failed',
                    CreatedDate: '2026-05-14T10:10:00.000Z',
                    Error_Code__c: 'WA_131026',
                    Error_Message__c: 'This number is not on WhatsApp.'
                }),
                outbound({ Body__c: 'See you at 3', Status__c: 'Read', Sent_At__c: '2026-05-14T10:05:00.000Z' }),
                inbound({ Body__c: 'When is my appointment?', Received_At__c: '2026-05-14T10:00:00.000Z' }),
                outbound({ Body__c: 'Reminder sent', Status__c: 'Delivered', Sent_At__c: '2026-05-14T10:06:00.000Z' }),
                outbound({ Body__c: 'Any questions?', Status__c: 'Sent', Sent_At__c: '2026-05-14T10:07:00.000Z' })
            ])
        );
        await flush();

        const rows = all(element, 'message');
        expect(rows.map((row) => row.querySelector('.text').textContent)).toEqual([
            'When is my appointment?',
            'See you at 3',
            'Reminder sent',
            'Any questions?',
            'Sorry, could not reach you'
        ]);
        expect(rows.map((row) => row.dataset.side)).toEqual(['inbound', 'outbound', 'outbound', 'outbound', 'outbound']);
        expect(rows[0].classList.contains('row_inbound')).toBe(true);
        expect(rows[1].classList.contains('row_outbound')).toBe(true);

        expect(rows[0].querySelector('[data-id="ticks"]')).toBeNull();
        const tick = (row) => row.querySelector('[data-id="ticks"]');
        expect(tick(rows[1]).textContent).toBe('✓✓');
        expect(tick(rows[1]).classList.contains('ticks_read')).toBe(true);
        expect(tick(rows[2]).textContent).toBe('✓✓');
        expect(tick(rows[2]).classList.contains('ticks_read')).toBe(false);
        expect(tick(rows[3]).textContent).toBe('✓');
        expect(tick(rows[4]).getAttribute('title')).toBe('Failed');
        expect(rows[4].querySelector('[data-id="reason"]').textContent).toBe('This number is not on WhatsApp.');
        expect(all(element, 'reason')).toHaveLength(1);
        expect(one(element, 'empty')).toBeNull();
    });

    it('shows the open window with its remaining time', async () => {
        const element = mount();
        getRelatedListRecords.emit(
            relatedList([
                inbound({
                    Body__c: 'Hi',
                    Received_At__c: '2026-05-13T15:12:00.000Z',
                    Window_Expires_At__c: '2026-05-14T15:12:00.000Z'
                })
            ])
        );
        await flush();
        expect(one(element, 'window').textContent).toBe('Window open for 3 h 12 min');
        expect(one(element, 'window').classList.contains('window_open')).toBe(true);
    });

    it('counts the window down as time passes', async () => {
        const element = mount();
        getRelatedListRecords.emit(
            relatedList([inbound({ Body__c: 'Hi', Window_Expires_At__c: '2026-05-14T12:30:00.000Z' })])
        );
        await flush();
        expect(one(element, 'window').textContent).toBe('Window open for 30 min');
        jest.advanceTimersByTime(31 * 60 * 1000);
        await flush();
        expect(one(element, 'window').textContent).toBe('Window closed: use a template');
    });

    it('shows a closed window: use a template', async () => {
        const element = mount();
        getRelatedListRecords.emit(
            relatedList([
                inbound({ Body__c: 'Hi', Received_At__c: '2026-05-12T09:00:00.000Z', Window_Expires_At__c: '2026-05-13T09:00:00.000Z' })
            ])
        );
        await flush();
        expect(one(element, 'window').textContent).toBe('Window closed: use a template');
        expect(one(element, 'window').classList.contains('window_closed')).toBe(true);
    });

    it('shows an empty conversation', async () => {
        const element = mount();
        getRelatedListRecords.emit(relatedList([]));
        await flush();
        expect(all(element, 'message')).toHaveLength(0);
        expect(one(element, 'empty').textContent).toContain('No WhatsApp messages yet');
        expect(one(element, 'window').textContent).toContain('use a template');
    });

    it('shows the error when the messages cannot be read', async () => {
        const element = mount();
        getRelatedListRecords.error({ message: 'You do not have access to WhatsApp Messages.' });
        await flush();
        expect(element.shadowRoot.querySelector('.error').textContent).toBe('You do not have access to WhatsApp Messages.');
        expect(all(element, 'message')).toHaveLength(0);
    });
});
