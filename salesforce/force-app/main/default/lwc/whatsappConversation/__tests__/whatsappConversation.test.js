import { createElement } from 'lwc';
import WhatsappConversation from 'c/whatsappConversation';
import { getRelatedListRecords } from 'lightning/uiRelatedListApi';
import { updateRecord } from 'lightning/uiRecordApi';
import { refreshApex } from '@salesforce/apex';
import { inbound, outbound, relatedList } from './fixtures';

// The component refreshes its wired related list with refreshApex; here it is a spy, and the test
// plays the UI API by emitting what a refresh would deliver.
jest.mock('@salesforce/apex', () => ({ refreshApex: jest.fn(() => Promise.resolve()) }), { virtual: true });

const fs = require('node:fs');
const path = require('node:path');

const NOW = Date.parse('2026-05-14T12:00:00.000Z');
const CONTACT_ID = '003000000000001AAA';
const CASE_ID = '500000000000001AAA';
const ACCOUNT_ID = '001000000000001AAA';

function mount({ recordId = CONTACT_ID, objectApiName = 'Contact' } = {}) {
    const element = createElement('c-whatsapp-conversation', { is: WhatsappConversation });
    element.recordId = recordId;
    element.objectApiName = objectApiName;
    document.body.appendChild(element);
    return element;
}

// Let the re-render after a wire emit or an awaited call happen.
const flush = () => Promise.resolve();
// Move the fake clock, running the timers and the promises they start in order.
const advance = (ms) => jest.advanceTimersByTimeAsync(ms);

/** The wire configs of the component's related-list wires (the newest page has no pageToken). */
function wireConfigs() {
    const configs = [];
    getRelatedListRecords.emit(undefined, (config) => {
        configs.push(config);
        return false;
    });
    return configs;
}
const isNewest = (config) => !('pageToken' in config);
const emitNewest = (list) => getRelatedListRecords.emit(list, isNewest);

const all = (element, id) => Array.from(element.shadowRoot.querySelectorAll(`[data-id="${id}"]`));
const one = (element, id) => element.shadowRoot.querySelector(`[data-id="${id}"]`);
const texts = (element) => all(element, 'message').map((row) => row.querySelector('.text').textContent);

function setVisibility(state) {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });
    document.dispatchEvent(new CustomEvent('visibilitychange'));
}

describe('c-whatsapp-conversation', () => {
    beforeEach(() => {
        jest.useFakeTimers();
        jest.setSystemTime(NOW);
    });

    afterEach(() => {
        while (document.body.firstChild) {
            document.body.removeChild(document.body.firstChild);
        }
        delete document.visibilityState;
        delete HTMLElement.prototype.scrollHeight;
        jest.useRealTimers();
        jest.clearAllMocks();
    });

    describe('reading the conversation', () => {
        it('asks the UI API for the newest 50 messages of the record\'s WhatsApp_Messages__r related list', async () => {
            mount();
            await flush();

            const newest = wireConfigs().filter(isNewest);

            expect(newest).toHaveLength(1);
            expect(newest[0]).toMatchObject({
                parentRecordId: CONTACT_ID,
                relatedListId: 'WhatsApp_Messages__r',
                pageSize: 50,
                sortBy: ['-WhatsApp_Message__c.CreatedDate']
            });
            expect(newest[0].fields).toEqual(
                expect.arrayContaining([
                    'WhatsApp_Message__c.Status__c',
                    'WhatsApp_Message__c.Received_At__c',
                    'WhatsApp_Message__c.SystemModstamp',
                    'WhatsApp_Message__c.From_Phone__c',
                    'WhatsApp_Message__c.Business_Number_Id__c'
                ])
            );
        });

        it('shows a spinner until the messages arrive', () => {
            const element = mount();

            expect(element.shadowRoot.querySelector('lightning-spinner').alternativeText).toBe('Loading WhatsApp messages');
            expect(all(element, 'message')).toHaveLength(0);
        });

        it('renders the conversation as a list with sides, status icons and failure reasons', async () => {
            const element = mount();

            emitNewest(
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
            expect(texts(element)).toEqual([
                'When is my appointment?',
                'See you at 3',
                'Reminder sent',
                'Any questions?',
                'Sorry, could not reach you'
            ]);
            expect(rows.every((row) => row.tagName === 'LI' && row.parentElement.tagName === 'OL')).toBe(true);
            expect(rows.map((row) => row.dataset.side)).toEqual(['inbound', 'outbound', 'outbound', 'outbound', 'outbound']);
            expect(rows[0].querySelector('.slds-assistive-text').textContent).toBe('From the customer:');
            expect(rows[1].querySelector('.slds-assistive-text').textContent).toBe('To the customer:');

            const icon = (row) => row.querySelector('[data-id="status-icon"]');
            expect(icon(rows[0])).toBeNull();
            expect([icon(rows[1]).iconName, icon(rows[1]).alternativeText]).toEqual(['utility:preview', 'Read']);
            expect([icon(rows[2]).iconName, icon(rows[2]).alternativeText]).toEqual(['utility:check', 'Delivered']);
            expect(rows[2].querySelector('[data-id="status-icon-second"]').iconName).toBe('utility:check');
            expect([icon(rows[3]).iconName, icon(rows[3]).alternativeText]).toEqual(['utility:check', 'Sent']);
            expect(rows[3].querySelector('[data-id="status-icon-second"]')).toBeNull();
            expect([icon(rows[4]).iconName, icon(rows[4]).alternativeText, icon(rows[4]).variant]).toEqual([
                'utility:error',
                'Failed',
                'error'
            ]);
            expect(rows[4].querySelector('[data-id="reason"]').textContent).toBe('This number is not on WhatsApp.');
            expect(all(element, 'reason')).toHaveLength(1);
            expect(one(element, 'empty')).toBeNull();
        });

        it('shows waiting, canceled, queued, scheduled and sending messages with their own icons', async () => {
            const element = mount();

            emitNewest(
                relatedList([
                    outbound({ Body__c: 'a', Status__c: 'Waiting for Reply', CreatedDate: '2026-05-14T10:00:00.000Z' }),
                    outbound({ Body__c: 'b', Status__c: 'Canceled', CreatedDate: '2026-05-14T10:01:00.000Z' }),
                    outbound({ Body__c: 'c', Status__c: 'Queued', CreatedDate: '2026-05-14T10:02:00.000Z' }),
                    outbound({
                        Body__c: 'd',
                        Status__c: 'Queued',
                        Scheduled_At__c: '2026-05-15T09:00:00.000Z',
                        CreatedDate: '2026-05-14T10:03:00.000Z'
                    }),
                    outbound({ Body__c: 'e', Status__c: 'Sending', CreatedDate: '2026-05-14T10:04:00.000Z' })
                ])
            );
            await flush();

            const icons = all(element, 'status-icon').map((icon) => [icon.iconName, icon.alternativeText]);
            expect(icons).toEqual([
                ['utility:pause', 'Waiting for Reply'],
                ['utility:ban', 'Canceled'],
                ['utility:clock', 'Queued'],
                ['utility:event', 'Scheduled'],
                ['utility:sync', 'Sending']
            ]);
            expect(all(element, 'note').map((note) => note.textContent)).toEqual([
                'Waiting for the customer to reply; sent after the template'
            ]);
        });

        it('shows an empty conversation', async () => {
            const element = mount();

            emitNewest(relatedList([]));
            await flush();

            expect(all(element, 'message')).toHaveLength(0);
            expect(one(element, 'empty').textContent).toBe('No WhatsApp messages yet. Send a template to start the conversation.');
            expect(one(element, 'window').textContent).toBe('Window closed: the customer has not written yet, use a template');
        });

        it('shows the error when the messages cannot be read', async () => {
            const element = mount();

            getRelatedListRecords.error({ message: 'You do not have access to WhatsApp Messages.' });
            await flush();

            expect(one(element, 'error').textContent).toBe('You do not have access to WhatsApp Messages.');
            expect(one(element, 'error').getAttribute('role')).toBe('alert');
            expect(all(element, 'message')).toHaveLength(0);
        });

        it('takes every word it shows from Custom Labels, none written into the template', () => {
            const html = fs.readFileSync(path.join(__dirname, '..', 'whatsappConversation.html'), 'utf8');

            const literalText = html
                .replace(/<!--[\s\S]*?-->/g, ' ')
                .replace(/<[^>]*>/g, ' ')
                .replace(/\{[^}]*\}/g, ' ')
                .trim();

            expect(literalText).toBe('');
        });
    });

    describe('the window banner', () => {
        it('shows the open window with its remaining time', async () => {
            const element = mount();

            emitNewest(
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
            emitNewest(relatedList([inbound({ Body__c: 'Hi', Window_Expires_At__c: '2026-05-14T12:30:00.000Z' })]));
            await flush();
            expect(one(element, 'window').textContent).toBe('Window open for 30 min');

            await advance(31 * 60 * 1000);

            expect(one(element, 'window').textContent).toBe('Window closed: use a template');
        });

        it('shows a closed window: use a template', async () => {
            const element = mount();

            emitNewest(
                relatedList([
                    inbound({ Body__c: 'Hi', Received_At__c: '2026-05-12T09:00:00.000Z', Window_Expires_At__c: '2026-05-13T09:00:00.000Z' })
                ])
            );
            await flush();

            expect(one(element, 'window').textContent).toBe('Window closed: use a template');
            expect(one(element, 'window').classList.contains('window_closed')).toBe(true);
        });

        it('on a Case page shows the window the customer\'s reply to the Case opened 2 hours ago', async () => {
            // sfwa links an inbound reply to the Case of the latest outbound message, so it is in
            // the Case's WhatsApp_Messages__r list: the banner must count from it.
            const element = mount({ recordId: CASE_ID, objectApiName: 'Case' });

            emitNewest(
                relatedList([
                    inbound({ Body__c: 'Yes, still broken', Received_At__c: '2026-05-14T10:00:00.000Z', From_Phone__c: '+4915100000001' }),
                    outbound({
                        Message_Type__c: 'Template',
                        Template_Name__c: 'case_follow_up',
                        Status__c: 'Read',
                        Sent_At__c: '2026-05-14T09:00:00.000Z'
                    })
                ])
            );
            await flush();

            expect(wireConfigs().filter(isNewest)[0].parentRecordId).toBe(CASE_ID);
            expect(one(element, 'window').textContent).toBe('Window open for 22 h');
            expect(texts(element)).toEqual(['Template: case_follow_up', 'Yes, still broken']);
        });
    });

    describe('placement', () => {
        it('is offered on Account pages (Person Accounts too) and in the mobile app', () => {
            const meta = fs.readFileSync(path.join(__dirname, '..', 'whatsappConversation.js-meta.xml'), 'utf8');

            const objects = [...meta.matchAll(/<object>(\w+)<\/object>/g)].map((match) => match[1]);
            expect(objects).toEqual(['Contact', 'Lead', 'Case', 'Account']);
            expect(meta).toContain('<supportedFormFactor type="Small"/>');
            expect(meta).toContain('<supportedFormFactor type="Large"/>');
        });

        it('reads the Account\'s messages through the same WhatsApp_Messages__r related list', async () => {
            const element = mount({ recordId: ACCOUNT_ID, objectApiName: 'Account' });
            await flush();

            emitNewest(relatedList([inbound({ Body__c: 'Hello from the account', Received_At__c: '2026-05-14T11:00:00.000Z' })]));
            await flush();

            expect(wireConfigs().filter(isNewest)[0]).toMatchObject({
                parentRecordId: ACCOUNT_ID,
                relatedListId: 'WhatsApp_Messages__r'
            });
            expect(texts(element)).toEqual(['Hello from the account']);
        });
    });

    describe('the composer', () => {
        it('sits below the timeline, answering the latest inbound message from its business number', async () => {
            const element = mount();

            emitNewest(
                relatedList([
                    outbound({ To_Phone__c: '+4915100000009', Business_Number_Id__c: '333', Status__c: 'Read', Sent_At__c: '2026-05-14T11:00:00.000Z' }),
                    inbound({
                        From_Phone__c: '+4915100000001',
                        Business_Number_Id__c: '111',
                        Received_At__c: '2026-05-14T10:00:00.000Z'
                    })
                ])
            );
            await flush();

            const composer = one(element, 'composer');
            expect(composer.tagName).toBe('C-WHATSAPP-COMPOSER');
            expect(composer.previousElementSibling).not.toBeNull();
            expect({
                recordId: composer.recordId,
                objectApiName: composer.objectApiName,
                toPhone: composer.toPhone,
                businessNumberId: composer.businessNumberId,
                windowOpen: composer.windowOpen,
                windowExpiresAt: composer.windowExpiresAt
            }).toEqual({
                recordId: CONTACT_ID,
                objectApiName: 'Contact',
                toPhone: '+4915100000001',
                businessNumberId: '111',
                windowOpen: true,
                windowExpiresAt: Date.parse('2026-05-15T10:00:00.000Z')
            });
        });

        it('writes to the latest outbound number with a closed window when the customer never wrote', async () => {
            const element = mount();

            emitNewest(relatedList([outbound({ To_Phone__c: '+4915100000009', Status__c: 'Sent', Sent_At__c: '2026-05-14T11:00:00.000Z' })]));
            await flush();

            const composer = one(element, 'composer');
            expect([composer.toPhone, composer.businessNumberId, composer.windowOpen]).toEqual(['+4915100000009', undefined, false]);
        });

        it('refreshes at once when the composer has sent, and starts the back-off again', async () => {
            const element = mount();
            emitNewest(relatedList([inbound({ Body__c: 'Hi', Received_At__c: '2026-05-14T11:00:00.000Z' })]));
            await flush();
            await advance(5000 + 10000); // two quiet refreshes: the next would wait 20 s
            expect(refreshApex).toHaveBeenCalledTimes(2);

            one(element, 'composer').dispatchEvent(new CustomEvent('sent', { detail: { id: 'a00000000000999AAA' } }));
            await flush();

            expect(refreshApex).toHaveBeenCalledTimes(3);
            await advance(4999);
            expect(refreshApex).toHaveBeenCalledTimes(3);
            await advance(1);
            expect(refreshApex).toHaveBeenCalledTimes(4);
        });
    });

    describe('live refresh', () => {
        it('shows the customer\'s reply without a reload when the timer refreshes the list', async () => {
            const element = mount();
            const question = outbound({ Body__c: 'Does 3 pm suit you?', Status__c: 'Delivered', Sent_At__c: '2026-05-14T11:59:00.000Z' });
            emitNewest(relatedList([question]));
            await flush();
            expect(texts(element)).toEqual(['Does 3 pm suit you?']);

            await advance(5000);
            expect(refreshApex).toHaveBeenCalledTimes(1);
            // What the UI API returns to the refreshed wire: the reply, newest first.
            emitNewest(relatedList([inbound({ Body__c: 'Yes, see you then', Received_At__c: '2026-05-14T12:00:04.000Z' }), question]));
            await flush();

            expect(texts(element)).toEqual(['Does 3 pm suit you?', 'Yes, see you then']);
            expect(one(element, 'window').textContent).toBe('Window open for 23 h 59 min');
        });

        it('refreshes the wired newest page, the one refreshApex needs', async () => {
            mount();
            const list = relatedList([outbound({ Body__c: 'x', Status__c: 'Sent' })]);
            emitNewest(list);
            await flush();

            await advance(5000);

            expect(refreshApex).toHaveBeenCalledWith(expect.objectContaining({ data: list }));
        });

        it('backs off from 5 to 60 seconds while nothing changes, and back to 5 seconds on a change', async () => {
            mount();
            const times = [];
            refreshApex.mockImplementation(() => {
                times.push(Date.now() - NOW);
                return Promise.resolve();
            });
            const sent = outbound({ Body__c: 'x', Status__c: 'Sent', SystemModstamp: '2026-05-14T11:00:00.000Z' });
            emitNewest(relatedList([sent]));
            await flush();

            await advance(200 * 1000);
            expect(times).toEqual([5000, 15000, 35000, 75000, 135000, 195000]);

            // At 200 s the customer reads it: the next refresh comes 5 s later, then backs off again.
            emitNewest(relatedList([{ ...sent, fields: { ...sent.fields, Status__c: { value: 'Read' } } }]));
            await flush();
            await advance(20 * 1000);

            expect(times.slice(6)).toEqual([205000, 215000]);
        });

        it('stops refreshing while the tab is hidden and refreshes at once when it is visible again', async () => {
            mount();
            emitNewest(relatedList([outbound({ Body__c: 'x', Status__c: 'Sent' })]));
            await flush();

            setVisibility('hidden');
            await advance(10 * 60 * 1000);
            expect(refreshApex).not.toHaveBeenCalled();

            setVisibility('visible');
            await flush();
            expect(refreshApex).toHaveBeenCalledTimes(1);

            await advance(5000);
            expect(refreshApex).toHaveBeenCalledTimes(2);
        });

        it('stops refreshing when the component is removed from the page', async () => {
            const element = mount();
            emitNewest(relatedList([outbound({ Body__c: 'x', Status__c: 'Sent' })]));
            await flush();

            document.body.removeChild(element);
            await advance(10 * 60 * 1000);

            expect(refreshApex).not.toHaveBeenCalled();
        });
    });

    describe('scrolling and paging', () => {
        const TALL = 1000;
        let height;
        beforeEach(() => {
            height = TALL;
            Object.defineProperty(HTMLElement.prototype, 'scrollHeight', { configurable: true, get: () => height });
        });

        it('opens scrolled to the newest message, in a keyboard-focusable region', async () => {
            const element = mount();

            emitNewest(relatedList([inbound({ Body__c: 'Hi', Received_At__c: '2026-05-14T11:00:00.000Z' })]));
            await flush();

            const scroller = one(element, 'scroller');
            expect(scroller.scrollTop).toBe(TALL);
            expect(scroller.getAttribute('tabindex')).toBe('0');
            expect(scroller.getAttribute('role')).toBe('region');
            expect(scroller.getAttribute('aria-label')).toBe('WhatsApp conversation');
        });

        it('follows new messages while the rep is at the bottom, not while they read older ones', async () => {
            const element = mount();
            const first = inbound({ Body__c: 'one', Received_At__c: '2026-05-14T11:00:00.000Z' });
            emitNewest(relatedList([first]));
            await flush();
            const scroller = one(element, 'scroller');

            scroller.scrollTop = 100;
            scroller.dispatchEvent(new CustomEvent('scroll'));
            const second = inbound({ Body__c: 'two', Received_At__c: '2026-05-14T11:01:00.000Z' });
            emitNewest(relatedList([second, first]));
            await flush();
            expect(scroller.scrollTop).toBe(100);

            scroller.scrollTop = TALL;
            scroller.dispatchEvent(new CustomEvent('scroll'));
            scroller.scrollTop = TALL - 400; // the next render must move it back down
            emitNewest(relatedList([inbound({ Body__c: 'three', Received_At__c: '2026-05-14T11:02:00.000Z' }), second, first]));
            await flush();
            expect(scroller.scrollTop).toBe(TALL);
        });

        it('loads older messages page by page with the related list\'s nextPageToken', async () => {
            const element = mount();
            emitNewest(
                relatedList([inbound({ Body__c: 'newest', Received_At__c: '2026-05-14T11:00:00.000Z' })], { nextPageToken: '50' })
            );
            await flush();

            one(element, 'load-older').click();
            await flush();
            const older = wireConfigs().filter((config) => config.pageToken === '50');
            expect(older).toHaveLength(1);
            expect(older[0]).toMatchObject({ parentRecordId: CONTACT_ID, relatedListId: 'WhatsApp_Messages__r', pageSize: 50 });
            expect(element.shadowRoot.querySelector('.older lightning-spinner').alternativeText).toBe('Loading older messages');

            getRelatedListRecords.emit(
                relatedList([inbound({ Body__c: 'older', Received_At__c: '2026-05-13T11:00:00.000Z' })], {
                    currentPageToken: '50',
                    nextPageToken: '100'
                }),
                (config) => config.pageToken === '50'
            );
            await flush();
            expect(texts(element)).toEqual(['older', 'newest']);

            one(element, 'load-older').click();
            await flush();
            getRelatedListRecords.emit(
                relatedList([inbound({ Body__c: 'oldest', Received_At__c: '2026-05-12T11:00:00.000Z' })], {
                    currentPageToken: '100',
                    nextPageToken: null
                }),
                (config) => config.pageToken === '100'
            );
            await flush();

            expect(texts(element)).toEqual(['oldest', 'older', 'newest']);
            expect(one(element, 'load-older')).toBeNull();
            expect(element.shadowRoot.activeElement).toBe(one(element, 'scroller'));
        });

        it('keeps the message the rep was reading in place when older ones are added above it', async () => {
            const element = mount();
            emitNewest(relatedList([inbound({ Body__c: 'newest', Received_At__c: '2026-05-14T11:00:00.000Z' })], { nextPageToken: '50' }));
            await flush();
            const scroller = one(element, 'scroller');
            scroller.scrollTop = 0; // the rep scrolled up to the button
            scroller.dispatchEvent(new CustomEvent('scroll'));

            one(element, 'load-older').click();
            await flush();
            expect(scroller.scrollTop).toBe(0);
            height = TALL + 600; // the older page adds 600 px above
            getRelatedListRecords.emit(
                relatedList([inbound({ Body__c: 'older', Received_At__c: '2026-05-13T11:00:00.000Z' })], { currentPageToken: '50' }),
                (config) => config.pageToken === '50'
            );
            await flush();

            expect(scroller.scrollTop).toBe(600);
        });

        it('offers no "Load older" when everything fits on the first page', async () => {
            const element = mount();

            emitNewest(relatedList([inbound({ Body__c: 'only', Received_At__c: '2026-05-14T11:00:00.000Z' })]));
            await flush();

            expect(one(element, 'load-older')).toBeNull();
        });

        it('says so when an older page cannot be read', async () => {
            const element = mount();
            emitNewest(relatedList([inbound({ Body__c: 'newest' })], { nextPageToken: '50' }));
            await flush();
            one(element, 'load-older').click();
            await flush();

            getRelatedListRecords.emitError({ body: { message: 'Request timed out' } }, (config) => config.pageToken === '50');
            await flush();

            expect(one(element, 'older-error').textContent).toBe('Request timed out');
            expect(texts(element)).toEqual(['newest']);
        });
    });

    describe('cancel', () => {
        it('cancels a queued message through updateRecord and refreshes', async () => {
            const element = mount();
            const queued = outbound({ Body__c: 'Your appointment is tomorrow at 3 pm', Status__c: 'Queued' });
            emitNewest(relatedList([queued, outbound({ Body__c: 'sent one', Status__c: 'Sent', Sent_At__c: '2026-05-14T09:00:00.000Z' })]));
            await flush();
            const buttons = all(element, 'cancel');
            expect(buttons).toHaveLength(1);
            expect(buttons[0].textContent.trim()).toBe('Cancel');
            expect(buttons[0].getAttribute('aria-label')).toBe('Cancel the message: Your appointment is tomorrow at 3 pm');

            buttons[0].click();
            await flush();
            await flush();

            expect(updateRecord).toHaveBeenCalledWith({ fields: { Id: queued.id, Status__c: 'Canceled' } });
            expect(refreshApex).toHaveBeenCalledTimes(1);
            expect(one(element, 'cancel-error')).toBeNull();
        });

        it('offers cancel on a message waiting for the customer\'s reply', async () => {
            const element = mount();

            emitNewest(relatedList([outbound({ Body__c: 'Here is the quote', Status__c: 'Waiting for Reply' })]));
            await flush();

            expect(all(element, 'cancel')).toHaveLength(1);
        });

        it('says in words why a message could not be canceled', async () => {
            const element = mount();
            emitNewest(relatedList([outbound({ Body__c: 'too late', Status__c: 'Queued' })]));
            await flush();
            updateRecord.mockRejectedValueOnce({
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
            });

            one(element, 'cancel').click();
            await flush();
            await flush();
            await flush();

            const error = one(element, 'cancel-error');
            expect(error.textContent).toBe(
                'The message could not be canceled: Only a Queued or Waiting for Reply message can be canceled: this one is already with WhatsApp.'
            );
            expect(error.getAttribute('role')).toBe('alert');
            expect(refreshApex).toHaveBeenCalledTimes(1);
        });
    });
    describe('accessibility (axe-core through sa11y)', () => {
        // sa11y runs axe asynchronously on real timers (the refresh timer set before stays faked).

        it('is accessible while loading', async () => {
            const element = mount();

            jest.useRealTimers();
            await expect(element).toBeAccessible();
        });

        it('is accessible with no messages', async () => {
            const element = mount();
            emitNewest(relatedList([]));
            await flush();

            jest.useRealTimers();
            await expect(element).toBeAccessible();
        });

        it('is accessible with a conversation in every status, Load older and Cancel', async () => {
            const element = mount();
            emitNewest(
                relatedList(
                    [
                        inbound({ Body__c: 'Hi', Received_At__c: '2026-05-14T09:00:00.000Z', Media_URL__c: 'https://example.com/a.jpg', Message_Type__c: 'Image' }),
                        ...['Queued', 'Waiting for Reply', 'Sending', 'Sent', 'Delivered', 'Read', 'Canceled'].map((status, index) =>
                            outbound({ Body__c: `message ${index}`, Status__c: status, CreatedDate: `2026-05-14T10:0${index}:00.000Z` })
                        )
                    ],
                    { nextPageToken: '50' }
                )
            );
            await flush();
            expect(all(element, 'message')).toHaveLength(8);

            jest.useRealTimers();
            await expect(element).toBeAccessible();
        });

        it('is accessible with a failed message and a refused cancel', async () => {
            const element = mount();
            emitNewest(
                relatedList([
                    outbound({ Body__c: 'x', Status__c: 'Failed', Error_Message__c: 'This number is not on WhatsApp.' }),
                    outbound({ Body__c: 'y', Status__c: 'Queued' })
                ])
            );
            await flush();
            updateRecord.mockRejectedValueOnce({ body: { message: 'Too late' } });
            one(element, 'cancel').click();
            await flush();
            await flush();
            await flush();
            expect(one(element, 'cancel-error')).not.toBeNull();

            jest.useRealTimers();
            await expect(element).toBeAccessible();
        });

        it('is accessible when the messages cannot be read', async () => {
            const element = mount();
            getRelatedListRecords.error({ message: 'You do not have access to WhatsApp Messages.' });
            await flush();

            jest.useRealTimers();
            await expect(element).toBeAccessible();
        });
    });
});
