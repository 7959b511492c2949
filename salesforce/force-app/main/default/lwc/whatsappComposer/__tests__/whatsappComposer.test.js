import { createElement } from 'lwc';
import WhatsappComposer from 'c/whatsappComposer';
import { createRecord, getRecord } from 'lightning/uiRecordApi';
import { getObjectInfo } from 'lightning/uiObjectInfoApi';
import { gql, graphql } from 'lightning/graphql';
import { getRecordData, templatesData } from './fixtures';

const NOW = Date.parse('2026-05-14T12:00:00.000Z');
const CONTACT_ID = '003000000000001AAA';
const NEW_ID = 'a00000000000099AAA';

function mount(props = {}) {
    const element = createElement('c-whatsapp-composer', { is: WhatsappComposer });
    Object.assign(element, { recordId: CONTACT_ID, objectApiName: 'Contact', ...props });
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

const one = (element, id) => element.shadowRoot.querySelector(`[data-id="${id}"]`);
const all = (element, id) => Array.from(element.shadowRoot.querySelectorAll(`[data-id="${id}"]`));

function change(target, value) {
    target.dispatchEvent(new CustomEvent('change', { detail: { value } }));
}

async function choose(element, id, value) {
    change(one(element, id), value);
    await flush();
}

async function fillParameter(element, name, value) {
    const input = all(element, 'parameter').find((i) => i.dataset.name === name);
    change(input, value);
    await flush();
}

async function send(element) {
    one(element, 'send').click();
    await flush();
}

/** The record loaded with a mobile number, the catalog of approved templates, and the rep's field access. */
async function ready(element, values = { MobilePhone: '+49 151 2345678', Phone: '+49 30 123' }, businessNumberCreateable = true) {
    getRecord.emit(getRecordData('Contact', values, CONTACT_ID));
    graphql.emit(templatesData());
    getObjectInfo.emit({ apiName: 'WhatsApp_Message__c', fields: { Business_Number_Id__c: { createable: businessNumberCreateable } } });
    await flush();
}

describe('c-whatsapp-composer', () => {
    beforeEach(() => {
        jest.useFakeTimers();
        jest.setSystemTime(NOW);
        createRecord.mockResolvedValue({ id: NEW_ID });
    });

    afterEach(() => {
        while (document.body.firstChild) {
            document.body.removeChild(document.body.firstChild);
        }
        jest.useRealTimers();
        jest.clearAllMocks();
    });

    it('sends a text inside the window as one Outbound Queued Text record for the Contact', async () => {
        const element = mount({ windowOpen: true, windowExpiresAt: NOW + (3 * 60 + 12) * 60 * 1000, businessNumberId: '106540352242922' });
        await ready(element);
        const sent = jest.fn();
        const toast = jest.fn();
        element.addEventListener('sent', sent);
        element.addEventListener('lightning__showtoast', toast);

        expect(one(element, 'window-line').textContent).toBe('Window open: 3 h 12 min left');
        await choose(element, 'body', 'Your order ships today.');
        expect(one(element, 'counter').textContent).toBe('23 of 4096 characters');
        await send(element);

        expect(createRecord).toHaveBeenCalledTimes(1);
        expect(createRecord.mock.calls[0][0]).toEqual({
            apiName: 'WhatsApp_Message__c',
            fields: {
                Status__c: 'Queued',
                Message_Type__c: 'Text',
                Body__c: 'Your order ships today.',
                To_Phone__c: '+49 151 2345678',
                Contact__c: CONTACT_ID,
                Business_Number_Id__c: '106540352242922'
            }
        });
        expect(sent).toHaveBeenCalledTimes(1);
        expect(sent.mock.calls[0][0].detail).toEqual({ id: NEW_ID });
        expect(toast).toHaveBeenCalledTimes(1);
        expect(toast.mock.calls[0][0].detail.variant).toBe('success');
        expect(one(element, 'body').value).toBe('');
        expect(one(element, 'confirmation').textContent).toBe('sfwa sends it in a moment; follow its status in the conversation.');
        expect(one(element, 'error')).toBeNull();
    });

    it("sends from sfwa's default number when the rep may not set Business_Number_Id__c", async () => {
        const element = mount({ windowOpen: true, businessNumberId: '106540352242922' });
        await ready(element, undefined, false);
        await choose(element, 'body', 'Hello');
        await send(element);

        expect(createRecord).toHaveBeenCalledTimes(1);
        expect(createRecord.mock.calls[0][0].fields.Business_Number_Id__c).toBeUndefined();
    });

    it('treats the window as closed once its expiry has passed, even if the caller still says open', async () => {
        const element = mount({ windowOpen: true, windowExpiresAt: NOW + 60 * 1000 });
        await ready(element);
        expect(one(element, 'window-line').textContent).toBe('Window open: 1 min left');

        jest.setSystemTime(NOW + 2 * 60 * 1000);
        await choose(element, 'body', 'Still there?');

        expect(one(element, 'window-line').textContent).toBe('Window closed: only a template reaches the customer now.');
        expect(one(element, 'reengage')).not.toBeNull();
        await send(element);
        expect(one(element, 'error').textContent).toBe('Choose a template.');
        expect(createRecord).not.toHaveBeenCalled();
    });

    it('sends a positional template outside the window with its parameters and a live preview', async () => {
        const element = mount({ windowOpen: false });
        await ready(element);
        expect(one(element, 'window-line').textContent).toBe('Window closed: only a template reaches the customer now.');

        await choose(element, 'mode', 'template');
        const picker = one(element, 'template');
        expect(picker.options.map((o) => o.label)).toEqual([
            'order_update (en_US, UTILITY)',
            'order_update (pt_BR, UTILITY)',
            'reconnect_hello (en_US, UTILITY)',
            'welcome_offer (en_US, MARKETING)'
        ]);
        await choose(element, 'template', 'a01000000000001AAA');
        expect(all(element, 'parameter').map((i) => i.label)).toEqual(['{{1}}', '{{2}}']);
        expect(one(element, 'preview').textContent).toBe('Hi {{1}} (not filled in), your order {{2}} (not filled in) has shipped.');
        expect(element.shadowRoot.querySelectorAll('.preview-missing')).toHaveLength(2);

        await fillParameter(element, '1', 'Ana');
        await fillParameter(element, '2', 'ORD-7');
        expect(one(element, 'preview').textContent).toBe('Hi Ana, your order ORD-7 has shipped.');
        expect(element.shadowRoot.querySelectorAll('.preview-missing')).toHaveLength(0);
        expect(Array.from(element.shadowRoot.querySelectorAll('.preview-filled')).map((s) => s.textContent)).toEqual(['Ana', 'ORD-7']);
        await send(element);

        expect(createRecord.mock.calls[0][0].fields).toEqual({
            Status__c: 'Queued',
            Message_Type__c: 'Template',
            Template_Name__c: 'order_update',
            Template_Language__c: 'en_US',
            Template_Parameters__c: '["Ana","ORD-7"]',
            To_Phone__c: '+49 151 2345678',
            Contact__c: CONTACT_ID
        });
    });

    it('sends a named template as {"body":{name:value}} with the preview filled in', async () => {
        const element = mount({ windowOpen: false });
        await ready(element);
        await choose(element, 'mode', 'template');
        await choose(element, 'template', 'a01000000000004AAA');
        expect(all(element, 'parameter').map((i) => i.label)).toEqual(['first_name', 'offer_code']);

        await fillParameter(element, 'first_name', 'Ana');
        expect(one(element, 'preview').textContent).toBe('Hello Ana, use code {{offer_code}} (not filled in) today.');
        await fillParameter(element, 'offer_code', 'SPRING');
        expect(one(element, 'preview').textContent).toBe('Hello Ana, use code SPRING today.');
        await send(element);

        const fields = createRecord.mock.calls[0][0].fields;
        expect(fields.Template_Name__c).toBe('welcome_offer');
        expect(JSON.parse(fields.Template_Parameters__c)).toEqual({ body: { first_name: 'Ana', offer_code: 'SPRING' } });
    });

    it('refuses a template with an empty required parameter: a message in words, no record', async () => {
        const element = mount({ windowOpen: false });
        await ready(element);
        await choose(element, 'mode', 'template');
        await choose(element, 'template', 'a01000000000001AAA');
        await fillParameter(element, '1', 'Ana');
        await send(element);

        expect(createRecord).not.toHaveBeenCalled();
        expect(one(element, 'error').textContent).toBe('Fill in every parameter of the template. Empty: 2.');
        expect(one(element, 'error').closest('[role="alert"]')).not.toBeNull();
    });

    it('offers re-engagement when the rep types to a closed window, and sends one record with the text and the template', async () => {
        const element = mount({ windowOpen: false });
        await ready(element);
        expect(one(element, 'reengage')).toBeNull();

        await choose(element, 'body', 'Here is the quote you asked for.');
        expect(one(element, 'reengage').textContent).toContain('Send a template now; your text goes when the customer answers.');
        expect(one(element, 'send').label).toBe('Send template, then text');
        await choose(element, 'template', 'a01000000000003AAA');
        await fillParameter(element, '1', 'Ana');
        expect(one(element, 'preview').textContent).toBe('Hi Ana, we have an answer for you. Reply to continue.');
        await send(element);

        expect(createRecord).toHaveBeenCalledTimes(1);
        expect(createRecord.mock.calls[0][0].fields).toEqual({
            Status__c: 'Queued',
            Message_Type__c: 'Text',
            Body__c: 'Here is the quote you asked for.',
            Reengagement_Template__c: 'reconnect_hello',
            Reengagement_Language__c: 'en_US',
            Reengagement_Parameters__c: '["Ana"]',
            To_Phone__c: '+49 151 2345678',
            Contact__c: CONTACT_ID
        });
    });

    it('sends a picked Salesforce File as Media_File_Id__c with the type from its extension and the caption', async () => {
        const element = mount({ windowOpen: true });
        await ready(element);
        await choose(element, 'mode', 'file');
        expect(one(element, 'file-upload').recordId).toBe(CONTACT_ID);
        one(element, 'file-upload').dispatchEvent(
            new CustomEvent('uploadfinished', { detail: { files: [{ name: 'Price List.pdf', documentId: '069000000000001AAA' }] } })
        );
        await flush();
        expect(one(element, 'file').textContent).toBe('File: Price List.pdf (Document)');
        await choose(element, 'caption', 'Our prices for 2026');
        await send(element);

        expect(createRecord.mock.calls[0][0].fields).toEqual({
            Status__c: 'Queued',
            Message_Type__c: 'Document',
            Media_File_Id__c: '069000000000001AAA',
            Media_Filename__c: 'Price List.pdf',
            Body__c: 'Our prices for 2026',
            To_Phone__c: '+49 151 2345678',
            Contact__c: CONTACT_ID
        });
    });

    it('refuses a file WhatsApp cannot send, in words', async () => {
        const element = mount({ windowOpen: true });
        await ready(element);
        await choose(element, 'mode', 'file');
        one(element, 'file-upload').dispatchEvent(
            new CustomEvent('uploadfinished', { detail: { files: [{ name: 'backup.zip', documentId: '069000000000002AAA' }] } })
        );
        await flush();
        await send(element);

        expect(createRecord).not.toHaveBeenCalled();
        expect(one(element, 'error').textContent).toContain('WhatsApp cannot send this kind of file.');
    });

    it('sends a public https link with the type guessed from it', async () => {
        const element = mount({ windowOpen: true });
        await ready(element);
        await choose(element, 'mode', 'link');
        await choose(element, 'url', 'https://cdn.example.com/photos/shoe.png');
        expect(one(element, 'url-type').value).toBe('Image');
        await send(element);

        expect(createRecord.mock.calls[0][0].fields).toMatchObject({
            Message_Type__c: 'Image',
            Media_URL__c: 'https://cdn.example.com/photos/shoe.png'
        });
    });

    it('refuses a link longer than 255 characters and one that is not https', async () => {
        const element = mount({ windowOpen: true });
        await ready(element);
        await choose(element, 'mode', 'link');
        await choose(element, 'url', `https://cdn.example.com/${'a'.repeat(240)}.png`);
        await send(element);
        expect(one(element, 'error').textContent).toBe(
            'The link is longer than 255 characters, the most Salesforce keeps. Use a shorter link, or upload the file.'
        );

        await choose(element, 'url', 'http://cdn.example.com/shoe.png');
        await send(element);
        expect(one(element, 'error').textContent).toBe('The link must be a public address starting with https://.');
        expect(createRecord).not.toHaveBeenCalled();
    });

    it('says files go only inside the window, and offers a template instead', async () => {
        const element = mount({ windowOpen: false });
        await ready(element);
        await choose(element, 'mode', 'file');
        expect(one(element, 'file-upload')).toBeNull();
        expect(one(element, 'media-blocked').textContent).toContain("Files and links go only while the customer's window is open.");
        expect(one(element, 'send').disabled).toBe(true);

        one(element, 'use-template').click();
        await flush();
        expect(one(element, 'mode').value).toBe('template');
        expect(one(element, 'template')).not.toBeNull();
    });

    it("shows the UI API's error in words when the record cannot be created", async () => {
        createRecord.mockRejectedValue({
            body: {
                message: 'An error occurred while trying to update the record. Please try again.',
                output: {
                    errors: [
                        {
                            errorCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION',
                            message: 'Create outbound WhatsApp messages with Status Queued.'
                        }
                    ],
                    fieldErrors: {}
                }
            }
        });
        const element = mount({ windowOpen: true });
        await ready(element);
        const sent = jest.fn();
        element.addEventListener('sent', sent);
        await choose(element, 'body', 'Hello');
        await send(element);

        expect(one(element, 'error').textContent).toBe(
            'The message was not saved: Create outbound WhatsApp messages with Status Queued.'
        );
        expect(one(element, 'error-region').getAttribute('role')).toBe('alert');
        expect(sent).not.toHaveBeenCalled();
        expect(one(element, 'body').value).toBe('Hello');
    });

    it('says which field to fill in when the record has no phone', async () => {
        const element = mount({ windowOpen: true });
        await ready(element, { MobilePhone: null, Phone: null });
        await choose(element, 'body', 'Hello');
        await send(element);

        expect(createRecord).not.toHaveBeenCalled();
        expect(one(element, 'error').textContent).toBe('This record has no phone number to send to: fill in MobilePhone or Phone.');
    });

    it("uses the Phone when there is no MobilePhone, and the caller's to-phone over both", async () => {
        const element = mount({ windowOpen: true });
        await ready(element, { MobilePhone: null, Phone: '+49 30 123' });
        await choose(element, 'body', 'Hello');
        await send(element);
        expect(createRecord.mock.calls[0][0].fields.To_Phone__c).toBe('+49 30 123');

        element.toPhone = '+49 170 999';
        await choose(element, 'body', 'Again');
        await send(element);
        expect(createRecord.mock.calls[1][0].fields.To_Phone__c).toBe('+49 170 999');
    });

    it("links a Case's message to the Case and its Contact", async () => {
        const element = mount({ recordId: '500000000000001AAA', objectApiName: 'Case', windowOpen: true });
        getRecord.emit(
            getRecordData('Case', { ContactId: '003000000000007AAA', ContactMobile: '+1 650 555 0101', ContactPhone: null }, '500000000000001AAA')
        );
        await flush();
        await choose(element, 'body', 'About your case');
        await send(element);

        expect(createRecord.mock.calls[0][0].fields).toMatchObject({
            Case__c: '500000000000001AAA',
            Contact__c: '003000000000007AAA',
            To_Phone__c: '+1 650 555 0101'
        });
    });

    it("links a Person Account's message to the Account and its person contact", async () => {
        const element = mount({ recordId: '001000000000001AAA', objectApiName: 'Account', windowOpen: true });
        getRecord.emit(
            getRecordData(
                'Account',
                { IsPersonAccount: true, PersonContactId: '003000000000008AAA', PersonMobilePhone: '+44 7700 900123', Phone: null },
                '001000000000001AAA'
            )
        );
        await flush();
        await choose(element, 'body', 'Hi');
        await send(element);

        expect(createRecord.mock.calls[0][0].fields).toMatchObject({
            Account__c: '001000000000001AAA',
            Contact__c: '003000000000008AAA',
            To_Phone__c: '+44 7700 900123'
        });
    });

    it('asks graphql for the approved templates only', () => {
        mount();
        // gql is a mock in Jest: the wire's query text is the template strings it was called with.
        const query = gql.mock.calls.map((call) => call[0].join('')).join('\n');
        expect(query).toContain('WhatsApp_Template__c');
        expect(query).toMatch(/Status__c:\s*\{\s*eq:\s*"APPROVED"\s*\}/);
        expect(query).toContain('Parameter_Names__c');
    });

    it('tells the rep when no approved template has been synced', async () => {
        const element = mount({ windowOpen: false });
        getRecord.emit(getRecordData('Contact', { MobilePhone: '+1' }, CONTACT_ID));
        graphql.emit({ uiapi: { query: { WhatsApp_Template__c: { edges: [] } } } });
        await flush();
        await choose(element, 'mode', 'template');
        expect(one(element, 'no-templates').textContent).toContain('No approved templates yet');
    });

    it('says why the templates could not be loaded', async () => {
        const element = mount({ windowOpen: false });
        getRecord.emit(getRecordData('Contact', { MobilePhone: '+1' }, CONTACT_ID));
        graphql.emitErrors([{ message: 'No access to WhatsApp Templates.' }]);
        await flush();
        await choose(element, 'mode', 'template');

        expect(one(element, 'template-error').textContent).toBe('The templates could not be loaded: No access to WhatsApp Templates.');
        expect(one(element, 'template').options).toEqual([]);
        await send(element);
        expect(one(element, 'error').textContent).toBe('Choose a template.');
        expect(createRecord).not.toHaveBeenCalled();
    });

    it('discards the draft and fires close when the rep cancels', async () => {
        const element = mount({ windowOpen: true });
        await ready(element);
        const close = jest.fn();
        element.addEventListener('close', close);
        await choose(element, 'body', 'Never mind');

        one(element, 'cancel').click();
        await flush();

        expect(close).toHaveBeenCalledTimes(1);
        expect(one(element, 'body').value).toBe('');
        expect(createRecord).not.toHaveBeenCalled();
    });

    describe('accessibility (axe-core through sa11y)', () => {
        // sa11y runs axe asynchronously on real timers.
        async function expectAccessible(element) {
            jest.useRealTimers();
            await expect(element).toBeAccessible();
        }

        it('is accessible while the rep writes a text inside the window', async () => {
            const element = mount({ windowOpen: true, windowExpiresAt: NOW + 60 * 60 * 1000 });
            await ready(element);
            await choose(element, 'body', 'Hello');
            expect(one(element, 'counter').textContent).toBe('5 of 4096 characters');
            await expectAccessible(element);
        });

        it('is accessible with the re-engagement offer, a template and its preview', async () => {
            const element = mount({ windowOpen: false });
            await ready(element);
            await choose(element, 'body', 'Hello');
            await choose(element, 'template', 'a01000000000001AAA');
            await fillParameter(element, '1', 'Ana');
            expect(one(element, 'reengage')).not.toBeNull();
            expect(one(element, 'preview')).not.toBeNull();
            await expectAccessible(element);
        });

        it('is accessible with a template whose parameters are missing, the error shown', async () => {
            const element = mount({ windowOpen: false });
            await ready(element);
            await choose(element, 'mode', 'template');
            await choose(element, 'template', 'a01000000000004AAA');
            await send(element);
            expect(one(element, 'error')).not.toBeNull();
            await expectAccessible(element);
        });

        it('is accessible with a file picked', async () => {
            const element = mount({ windowOpen: true });
            await ready(element);
            await choose(element, 'mode', 'file');
            one(element, 'file-upload').dispatchEvent(
                new CustomEvent('uploadfinished', { detail: { files: [{ name: 'a.png', documentId: '069000000000001AAA' }] } })
            );
            await flush();
            expect(one(element, 'file')).not.toBeNull();
            await expectAccessible(element);
        });

        it('is accessible with a link and its media type', async () => {
            const element = mount({ windowOpen: true });
            await ready(element);
            await choose(element, 'mode', 'link');
            await choose(element, 'url', 'https://cdn.example.com/a.pdf');
            expect(one(element, 'url-type').value).toBe('Document');
            await expectAccessible(element);
        });

        it('is accessible when media is refused outside the window', async () => {
            const element = mount({ windowOpen: false });
            await ready(element);
            await choose(element, 'mode', 'link');
            expect(one(element, 'media-blocked')).not.toBeNull();
            await expectAccessible(element);
        });

        it('is accessible with the confirmation after a send', async () => {
            const element = mount({ windowOpen: true });
            await ready(element);
            await choose(element, 'body', 'Hello');
            await send(element);
            expect(one(element, 'confirmation')).not.toBeNull();
            await expectAccessible(element);
        });
    });
});
