import {
    MODE,
    PROBLEM,
    buildParametersJson,
    buildRecord,
    businessNumberFor,
    checkDraft,
    checkMediaUrl,
    choosePhone,
    errorText,
    extensionOf,
    formatLabel,
    lookupFields,
    mediaTypeFor,
    missingParameters,
    previewSegments,
    previewText,
    recordFields,
    remaining,
    templateOptions,
    templateParameters,
    templatesFromGraphql
} from '../composer';
import { getRecordData, templatesData, template } from './fixtures';

describe('composer.js', () => {
    describe('media files', () => {
        it('maps a file extension to the WhatsApp media type, ignoring case and the URL query', () => {
            expect(mediaTypeFor('Photo.JPG')).toBe('Image');
            expect(mediaTypeFor('scan.png')).toBe('Image');
            expect(mediaTypeFor('clip.mp4')).toBe('Video');
            expect(mediaTypeFor('voice.ogg')).toBe('Audio');
            expect(mediaTypeFor('song.mp3')).toBe('Audio');
            expect(mediaTypeFor('Price List.pdf')).toBe('Document');
            expect(mediaTypeFor('offer.docx')).toBe('Document');
            expect(mediaTypeFor('https://cdn.example.com/a/b/invoice.PDF?sig=1.jpg#x')).toBe('Document');
        });

        it('refuses a file WhatsApp cannot send and a name without an extension', () => {
            expect(mediaTypeFor('archive.zip')).toBeNull();
            expect(mediaTypeFor('sticker.webp')).toBeNull();
            expect(mediaTypeFor('README')).toBeNull();
            expect(mediaTypeFor('.profile')).toBeNull();
            expect(extensionOf('')).toBe('');
        });
    });

    describe('media links', () => {
        it('accepts a public https link of at most 255 characters', () => {
            expect(checkMediaUrl('https://cdn.example.com/brochure.pdf')).toBeNull();
            expect(checkMediaUrl(`https://example.com/${'a'.repeat(255 - 20)}`)).toBeNull();
        });

        it('refuses a link longer than 255 characters', () => {
            expect(checkMediaUrl(`https://example.com/${'a'.repeat(255 - 19)}`)).toBe(PROBLEM.URL_TOO_LONG);
        });

        it('refuses http, other schemes, garbage and an empty link', () => {
            expect(checkMediaUrl('http://example.com/a.jpg')).toBe(PROBLEM.URL_NOT_HTTPS);
            expect(checkMediaUrl('ftp://example.com/a.jpg')).toBe(PROBLEM.URL_NOT_HTTPS);
            expect(checkMediaUrl('data:image/png;base64,AAAA')).toBe(PROBLEM.URL_NOT_HTTPS);
            expect(checkMediaUrl('example.com/a.jpg')).toBe(PROBLEM.URL_NOT_HTTPS);
            expect(checkMediaUrl('   ')).toBe(PROBLEM.URL_EMPTY);
        });
    });

    describe('templates', () => {
        it('reads the approved templates from the graphql answer, with the name from the template key', () => {
            const templates = templatesFromGraphql(templatesData());
            expect(templates.map((t) => `${t.name}|${t.language}`)).toEqual([
                'order_update|en_US',
                'order_update|pt_BR',
                'reconnect_hello|en_US',
                'welcome_offer|en_US'
            ]);
            const order = templates[0];
            expect(order.names).toEqual(['1', '2']);
            expect(order.named).toBe(false);
            expect(templates[3].names).toEqual(['first_name', 'offer_code']);
            expect(templates[3].named).toBe(true);
        });

        it('labels each template with its name, language and category', () => {
            const options = templateOptions(templatesFromGraphql(templatesData()));
            expect(options[0]).toEqual({ label: 'order_update (en_US, UTILITY)', value: 'a01000000000001AAA' });
        });

        it('finds the parameters from the names, else the count, else the body', () => {
            expect(templateParameters({ parameterNames: ' first_name , order_id ' })).toEqual({
                names: ['first_name', 'order_id'],
                named: true
            });
            expect(templateParameters({ parameterCount: 3 })).toEqual({ names: ['1', '2', '3'], named: false });
            expect(templateParameters({ body: 'Hi {{ name }}, {{name}} again, {{code}}' })).toEqual({
                names: ['name', 'code'],
                named: true
            });
            expect(templateParameters({ body: 'No parameters' })).toEqual({ names: [], named: false });
        });

        it('previews a positional template with the values filled in and the empty ones marked', () => {
            const body = 'Hi {{1}}, your order {{2}} has shipped.';
            expect(previewText(body, { 1: 'Ana', 2: 'ORD-7' })).toBe('Hi Ana, your order ORD-7 has shipped.');
            const segments = previewSegments(body, { 1: 'Ana', 2: ' ' });
            expect(segments.map((s) => [s.text, s.className])).toEqual([
                ['Hi ', 'preview-text'],
                ['Ana', 'preview-filled'],
                [', your order ', 'preview-text'],
                ['{{2}}', 'preview-missing'],
                [' has shipped.', 'preview-text']
            ]);
        });

        it('previews a named template, spaces inside the braces allowed', () => {
            expect(previewText('Hello {{ first_name }}: code {{offer_code}}', { first_name: 'Bo', offer_code: 'X1' })).toBe(
                'Hello Bo: code X1'
            );
        });

        it('lists the parameters left empty', () => {
            const t = template({ parameterNames: '1,2,3' });
            expect(missingParameters(t, { 1: 'a', 3: '  ' })).toEqual(['2', '3']);
        });

        it('writes positional parameters as a JSON list in order', () => {
            const t = template({ parameterNames: '1,2' });
            expect(buildParametersJson(t, { 2: 'ORD-7', 1: ' Ana ' })).toBe('["Ana","ORD-7"]');
        });

        it('writes named parameters as {"body":{name:value}}, quotes escaped', () => {
            const t = template({ parameterNames: 'first_name,offer_code' });
            const json = buildParametersJson(t, { first_name: 'Ana "the" rep', offer_code: 'X1' });
            expect(JSON.parse(json)).toEqual({ body: { first_name: 'Ana "the" rep', offer_code: 'X1' } });
        });

        it('writes the object form with the header link for a media-header template, and nothing for no parameters', () => {
            const t = template({ parameterNames: '1', headerType: 'IMAGE' });
            expect(JSON.parse(buildParametersJson(t, { 1: 'Ana' }, 'https://x.example/a.png'))).toEqual({
                header: { type: 'image', link: 'https://x.example/a.png' },
                body: ['Ana']
            });
            expect(buildParametersJson(template({ body: 'Hello' }), {})).toBeNull();
        });
    });

    describe('the page record', () => {
        it('reads MobilePhone first, then Phone', () => {
            expect(choosePhone('Contact', getRecordData('Contact', { MobilePhone: '+49 151 1', Phone: '+49 30 2' }))).toEqual({
                phone: '+49 151 1',
                source: 'MobilePhone'
            });
            expect(choosePhone('Lead', getRecordData('Lead', { MobilePhone: null, Phone: '+49 30 2' })).phone).toBe('+49 30 2');
        });

        it("reads a Case's contact phone and a Person Account's mobile", () => {
            const kase = getRecordData('Case', {
                ContactMobile: null,
                ContactPhone: null,
                Contact: { fields: { MobilePhone: { value: '+1 650 555 0101' }, Phone: { value: null } } }
            });
            expect(choosePhone('Case', kase).phone).toBe('+1 650 555 0101');
            const person = getRecordData('Account', { PersonMobilePhone: '+44 7700 900123', Phone: '+44 20 1' });
            expect(choosePhone('Account', person).phone).toBe('+44 7700 900123');
        });

        it('prefers the to-phone the caller gave', () => {
            expect(choosePhone('Contact', getRecordData('Contact', { MobilePhone: '1' }), ' +1 2 ')).toEqual({
                phone: '+1 2',
                source: 'to-phone'
            });
        });

        it('names the fields to fill in when the record has no phone', () => {
            expect(choosePhone('Contact', getRecordData('Contact', { MobilePhone: null, Phone: ' ' }))).toEqual({
                phone: null,
                fill: ['MobilePhone', 'Phone']
            });
            expect(choosePhone('Account', undefined).fill).toEqual(['PersonMobilePhone', 'Phone']);
        });

        it('links the message to the page record, a Case to its Contact and a Person Account to its person', () => {
            expect(lookupFields('Contact', '003A', undefined)).toEqual({ Contact__c: '003A' });
            expect(lookupFields('Lead', '00QA', undefined)).toEqual({ Lead__c: '00QA' });
            expect(lookupFields('Case', '500A', getRecordData('Case', { ContactId: '003B' }))).toEqual({
                Case__c: '500A',
                Contact__c: '003B'
            });
            expect(lookupFields('Case', '500A', undefined)).toEqual({ Case__c: '500A' });
            expect(lookupFields('Account', '001A', getRecordData('Account', { PersonContactId: '003P' }))).toEqual({
                Account__c: '001A',
                Contact__c: '003P'
            });
            expect(lookupFields('Account', '001A', getRecordData('Account', { PersonContactId: null }))).toEqual({
                Account__c: '001A'
            });
            expect(lookupFields('Opportunity', '006A', undefined)).toEqual({});
        });

        it('asks getRecord for the phone and lookup fields of each object', () => {
            expect(recordFields('Contact')).toEqual(['Contact.MobilePhone', 'Contact.Phone']);
            expect(recordFields('Account')).toContain('Account.PersonContactId');
            expect(recordFields('Case')).toContain('Case.ContactId');
            expect(recordFields('Opportunity')).toEqual([]);
        });
    });

    describe('drafts', () => {
        const t = template({ name: 'order_update', language: 'en_US', parameterNames: '1,2' });

        it('refuses an empty text and one over 4096 characters', () => {
            expect(checkDraft({ mode: MODE.TEXT, windowOpen: true, body: '  ' })).toEqual({ code: PROBLEM.BODY_EMPTY });
            expect(checkDraft({ mode: MODE.TEXT, windowOpen: true, body: 'x'.repeat(4097) })).toEqual({
                code: PROBLEM.BODY_TOO_LONG
            });
            expect(checkDraft({ mode: MODE.TEXT, windowOpen: true, body: 'x'.repeat(4096) })).toBeNull();
        });

        it('asks for a template when the text meets a closed window', () => {
            expect(checkDraft({ mode: MODE.TEXT, windowOpen: false, body: 'Hi' })).toEqual({ code: PROBLEM.TEMPLATE_MISSING });
            expect(checkDraft({ mode: MODE.TEXT, windowOpen: false, body: 'Hi', template: t, values: { 1: 'a' } })).toEqual({
                code: PROBLEM.PARAMETERS_MISSING,
                names: ['2']
            });
        });

        it('refuses media outside the window and a caption over 1024 characters', () => {
            const file = { id: '069000000000001AAA', name: 'a.pdf' };
            expect(checkDraft({ mode: MODE.FILE, windowOpen: false, file })).toEqual({ code: PROBLEM.WINDOW_CLOSED });
            expect(checkDraft({ mode: MODE.FILE, windowOpen: true, file, caption: 'x'.repeat(1025) })).toEqual({
                code: PROBLEM.CAPTION_TOO_LONG
            });
            expect(checkDraft({ mode: MODE.FILE, windowOpen: true })).toEqual({ code: PROBLEM.FILE_MISSING });
            expect(checkDraft({ mode: MODE.FILE, windowOpen: true, file: { id: '069X', name: 'a.zip' } })).toEqual({
                code: PROBLEM.FILE_UNSUPPORTED
            });
            expect(checkDraft({ mode: MODE.LINK, windowOpen: true, url: 'https://x.example/a', urlType: '' })).toEqual({
                code: PROBLEM.MEDIA_TYPE_MISSING
            });
        });

        it('builds a text record inside the window with the lookups and business number', () => {
            const record = buildRecord(
                { mode: MODE.TEXT, windowOpen: true, body: 'Hello' },
                { toPhone: '+1 650', businessNumberId: ' 1066 ', lookups: { Contact__c: '003A' } }
            );
            expect(record).toEqual({
                apiName: 'WhatsApp_Message__c',
                fields: {
                        Status__c: 'Queued',
                    To_Phone__c: '+1 650',
                    Contact__c: '003A',
                    Business_Number_Id__c: '1066',
                    Message_Type__c: 'Text',
                    Body__c: 'Hello'
                }
            });
        });

        it('writes the business number only when given and the rep may set the field', () => {
            const createable = { fields: { Business_Number_Id__c: { createable: true } } };
            expect(businessNumberFor(' 1066 ', createable)).toBe('1066');
            expect(businessNumberFor('1066', { fields: { Business_Number_Id__c: { createable: false } } })).toBeNull();
            expect(businessNumberFor('1066', undefined)).toBeNull();
            expect(businessNumberFor('', createable)).toBeNull();
        });

        it('builds one re-engagement record: the text, and the template to send first', () => {
            const record = buildRecord(
                { mode: MODE.TEXT, windowOpen: false, body: 'Your quote', template: t, values: { 1: 'Ana', 2: 'Q-1' } },
                { toPhone: '+1', lookups: { Lead__c: '00QA' } }
            );
            expect(record.fields).toEqual({
                Status__c: 'Queued',
                To_Phone__c: '+1',
                Lead__c: '00QA',
                Message_Type__c: 'Text',
                Body__c: 'Your quote',
                Reengagement_Template__c: 'order_update',
                Reengagement_Language__c: 'en_US',
                Reengagement_Parameters__c: '["Ana","Q-1"]'
            });
        });

        it('builds a file record with the type from the extension and the caption', () => {
            const record = buildRecord(
                { mode: MODE.FILE, windowOpen: true, file: { id: '069000000000001AAA', name: 'photo.jpeg' }, caption: 'Look' },
                { toPhone: '+1', lookups: {} }
            );
            expect(record.fields).toMatchObject({
                Message_Type__c: 'Image',
                Media_File_Id__c: '069000000000001AAA',
                Media_Filename__c: 'photo.jpeg',
                Body__c: 'Look'
            });
            expect(record.fields.Media_URL__c).toBeUndefined();
        });
    });

    describe('words', () => {
        it("joins the UI API's record errors and field errors", () => {
            const error = {
                body: {
                    message: 'An error occurred while trying to update the record.',
                    output: {
                        errors: [{ errorCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION', message: 'Create outbound messages Queued.' }],
                        fieldErrors: { To_Phone__c: [{ fieldLabel: 'To Phone', message: 'Too long.' }] }
                    }
                }
            };
            expect(errorText(error)).toBe('Create outbound messages Queued. To Phone: Too long.');
        });

        it('falls back to the body message, then the JavaScript message', () => {
            expect(errorText({ body: { message: 'Insufficient access.' } })).toBe('Insufficient access.');
            expect(errorText({ body: [{ message: 'a' }, { message: 'b' }] })).toBe('a b');
            expect(errorText(new Error('offline'))).toBe('offline');
            expect(errorText(undefined)).toBeNull();
        });

        it('fills label placeholders and leaves unknown ones', () => {
            expect(formatLabel('{0} of {1} ({2})', 3, 10)).toBe('3 of 10 ({2})');
        });

        it('counts the hours and minutes left of the window', () => {
            const now = Date.parse('2026-05-14T12:00:00Z');
            expect(remaining(Date.parse('2026-05-14T15:12:30Z'), now)).toEqual({ hours: 3, minutes: 12 });
            expect(remaining('2026-05-14T12:00:20Z', now)).toEqual({ hours: 0, minutes: 0 });
            expect(remaining(now - 1, now)).toBeNull();
            expect(remaining(undefined, now)).toBeNull();
        });
    });
});
