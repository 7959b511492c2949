import { LightningElement, api, wire } from 'lwc';
import { createRecord, getRecord } from 'lightning/uiRecordApi';
import { getObjectInfo } from 'lightning/uiObjectInfoApi';
import { gql, graphql } from 'lightning/graphql';
import { ShowToastEvent } from 'lightning/platformShowToastEvent';
import {
    ACCEPTED_EXTENSIONS,
    MAX_BODY,
    MAX_CAPTION,
    MAX_URL,
    MEDIA_TYPES,
    MODE,
    PROBLEM,
    OBJECT,
    buildRecord,
    businessNumberFor,
    checkDraft,
    choosePhone,
    errorText,
    formatLabel,
    lookupFields,
    mediaTypeFor,
    needsHeaderLink,
    parameterInputs,
    previewSegments,
    recordFields,
    remaining,
    templateOptions,
    templatesFromGraphql
} from './composer';

import MODE_LABEL from '@salesforce/label/c.WA_Composer_Mode_Label';
import MODE_TEXT from '@salesforce/label/c.WA_Composer_Mode_Text';
import MODE_TEMPLATE from '@salesforce/label/c.WA_Composer_Mode_Template';
import MODE_FILE from '@salesforce/label/c.WA_Composer_Mode_File';
import MODE_LINK from '@salesforce/label/c.WA_Composer_Mode_Link';
import WINDOW_OPEN from '@salesforce/label/c.WA_Composer_Window_Open';
import WINDOW_OPEN_NO_TIME from '@salesforce/label/c.WA_Composer_Window_Open_No_Time';
import WINDOW_CLOSED from '@salesforce/label/c.WA_Composer_Window_Closed';
import DURATION_HOURS from '@salesforce/label/c.WA_Composer_Duration_Hours';
import DURATION_MINUTES from '@salesforce/label/c.WA_Composer_Duration_Minutes';
import DURATION_UNDER_MINUTE from '@salesforce/label/c.WA_Composer_Duration_Under_Minute';
import BODY_LABEL from '@salesforce/label/c.WA_Composer_Body_Label';
import COUNTER from '@salesforce/label/c.WA_Composer_Counter';
import REENGAGE_OFFER from '@salesforce/label/c.WA_Composer_Reengage_Offer';
import TEMPLATE_LABEL from '@salesforce/label/c.WA_Composer_Template_Label';
import TEMPLATE_PLACEHOLDER from '@salesforce/label/c.WA_Composer_Template_Placeholder';
import TEMPLATE_NONE from '@salesforce/label/c.WA_Composer_Template_None';
import TEMPLATE_LOAD_ERROR from '@salesforce/label/c.WA_Composer_Template_Load_Error';
import HEADER_LINK_LABEL from '@salesforce/label/c.WA_Composer_Header_Link_Label';
import PREVIEW_HEADING from '@salesforce/label/c.WA_Composer_Preview_Heading';
import PREVIEW_EMPTY from '@salesforce/label/c.WA_Composer_Preview_Empty';
import FILE_LABEL from '@salesforce/label/c.WA_Composer_File_Label';
import FILE_SELECTED from '@salesforce/label/c.WA_Composer_File_Selected';
import FILE_REMOVE from '@salesforce/label/c.WA_Composer_File_Remove';
import CAPTION_LABEL from '@salesforce/label/c.WA_Composer_Caption_Label';
import LINK_LABEL from '@salesforce/label/c.WA_Composer_Link_Label';
import LINK_TYPE_LABEL from '@salesforce/label/c.WA_Composer_Link_Type_Label';
import TYPE_IMAGE from '@salesforce/label/c.WA_Composer_Type_Image';
import TYPE_DOCUMENT from '@salesforce/label/c.WA_Composer_Type_Document';
import TYPE_VIDEO from '@salesforce/label/c.WA_Composer_Type_Video';
import TYPE_AUDIO from '@salesforce/label/c.WA_Composer_Type_Audio';
import MEDIA_WINDOW_CLOSED from '@salesforce/label/c.WA_Composer_Media_Window_Closed';
import USE_TEMPLATE from '@salesforce/label/c.WA_Composer_Use_Template';
import SEND from '@salesforce/label/c.WA_Composer_Send';
import SEND_REENGAGEMENT from '@salesforce/label/c.WA_Composer_Send_Reengagement';
import CANCEL from '@salesforce/label/c.WA_Composer_Cancel';
import SENDING from '@salesforce/label/c.WA_Composer_Sending';
import SENT_TITLE from '@salesforce/label/c.WA_Composer_Sent_Title';
import SENT_MESSAGE from '@salesforce/label/c.WA_Composer_Sent_Message';
import ERROR_BODY_EMPTY from '@salesforce/label/c.WA_Composer_Error_Body_Empty';
import ERROR_BODY_TOO_LONG from '@salesforce/label/c.WA_Composer_Error_Body_Too_Long';
import ERROR_CAPTION_TOO_LONG from '@salesforce/label/c.WA_Composer_Error_Caption_Too_Long';
import ERROR_TEMPLATE_MISSING from '@salesforce/label/c.WA_Composer_Error_Template_Missing';
import ERROR_PARAMETERS_MISSING from '@salesforce/label/c.WA_Composer_Error_Parameters_Missing';
import ERROR_HEADER_LINK from '@salesforce/label/c.WA_Composer_Error_Header_Link';
import ERROR_FILE_MISSING from '@salesforce/label/c.WA_Composer_Error_File_Missing';
import ERROR_FILE_UNSUPPORTED from '@salesforce/label/c.WA_Composer_Error_File_Unsupported';
import ERROR_URL_EMPTY from '@salesforce/label/c.WA_Composer_Error_Url_Empty';
import ERROR_URL_TOO_LONG from '@salesforce/label/c.WA_Composer_Error_Url_Too_Long';
import ERROR_URL_NOT_HTTPS from '@salesforce/label/c.WA_Composer_Error_Url_Not_Https';
import ERROR_MEDIA_TYPE_MISSING from '@salesforce/label/c.WA_Composer_Error_Media_Type_Missing';
import ERROR_NO_PHONE from '@salesforce/label/c.WA_Composer_Error_No_Phone';
import ERROR_SEND_FAILED from '@salesforce/label/c.WA_Composer_Error_Send_Failed';
import ERROR_UNKNOWN from '@salesforce/label/c.WA_Composer_Error_Unknown';

const PROBLEM_LABELS = {
    [PROBLEM.BODY_EMPTY]: ERROR_BODY_EMPTY,
    [PROBLEM.BODY_TOO_LONG]: formatLabel(ERROR_BODY_TOO_LONG, MAX_BODY),
    [PROBLEM.CAPTION_TOO_LONG]: formatLabel(ERROR_CAPTION_TOO_LONG, MAX_CAPTION),
    [PROBLEM.TEMPLATE_MISSING]: ERROR_TEMPLATE_MISSING,
    [PROBLEM.PARAMETERS_MISSING]: ERROR_PARAMETERS_MISSING,
    [PROBLEM.HEADER_LINK_INVALID]: formatLabel(ERROR_HEADER_LINK, MAX_URL),
    [PROBLEM.FILE_MISSING]: ERROR_FILE_MISSING,
    [PROBLEM.FILE_UNSUPPORTED]: ERROR_FILE_UNSUPPORTED,
    [PROBLEM.URL_EMPTY]: ERROR_URL_EMPTY,
    [PROBLEM.URL_TOO_LONG]: formatLabel(ERROR_URL_TOO_LONG, MAX_URL),
    [PROBLEM.URL_NOT_HTTPS]: ERROR_URL_NOT_HTTPS,
    [PROBLEM.MEDIA_TYPE_MISSING]: ERROR_MEDIA_TYPE_MISSING,
    [PROBLEM.WINDOW_CLOSED]: MEDIA_WINDOW_CLOSED
};

const TYPE_LABELS = { Image: TYPE_IMAGE, Document: TYPE_DOCUMENT, Video: TYPE_VIDEO, Audio: TYPE_AUDIO };

/**
 * The rep's composer: a text inside the customer-service window, a template outside it, a
 * re-engagement offer when a rep types free text to a closed window, a Salesforce File or a
 * public link as media. Creates the WhatsApp_Message__c through the UI API (`createRecord`, no
 * Apex) as an Outbound, Queued record: the package's publish Flow then wakes sfwa, which sends it.
 * The logic lives in `composer.js`; this class holds the draft and words the outcome.
 *
 * Interface (shared by whatsappConversation and the whatsappSendAction quick action):
 * - `record-id`, `object-api-name`: the page's record (Contact, Lead, Case, Account, Person Account).
 * - `to-phone`: the customer's number, when the caller knows it (else read from the record,
 *   MobilePhone first).
 * - `business-number-id`: the business number to send from (blank: sfwa's default).
 * - `window-open`, `window-expires-at` (epoch ms): the customer-service window as the caller knows it.
 * - event `sent` (detail `{ id }`): a WhatsApp_Message__c was created.
 * - event `close`: the rep is done (the quick action closes).
 */
export default class WhatsappComposer extends LightningElement {
    @api recordId;
    @api objectApiName;
    @api toPhone;
    @api businessNumberId;
    @api windowOpen = false;
    @api windowExpiresAt;

    labels = {
        MODE_LABEL,
        BODY_LABEL,
        REENGAGE_OFFER,
        TEMPLATE_LABEL,
        TEMPLATE_PLACEHOLDER,
        TEMPLATE_NONE,
        HEADER_LINK_LABEL,
        PREVIEW_HEADING,
        PREVIEW_EMPTY,
        FILE_LABEL,
        FILE_REMOVE,
        CAPTION_LABEL,
        LINK_LABEL,
        LINK_TYPE_LABEL,
        MEDIA_WINDOW_CLOSED,
        USE_TEMPLATE,
        CANCEL,
        SENDING
    };

    maxBody = MAX_BODY;
    maxCaption = MAX_CAPTION;
    maxUrl = MAX_URL;
    acceptedFormats = ACCEPTED_EXTENSIONS;

    mode = MODE.TEXT;
    body = '';
    templateId;
    values = {};
    headerLink = '';
    file;
    caption = '';
    url = '';
    urlType = '';

    /** The words in the role="alert" region: why nothing was sent. */
    error;
    /** The inline confirmation after a send (aria-live polite). */
    confirmation;
    sending = false;

    record;
    recordLoaded = false;
    objectInfo;
    templates;
    templatesError;

    get optionalFields() {
        return recordFields(this.objectApiName);
    }

    /** Only ask for the record when there is something to read (an unknown object has nothing). */
    get recordIdToRead() {
        return this.optionalFields.length > 0 ? this.recordId : undefined;
    }

    @wire(getRecord, { recordId: '$recordIdToRead', optionalFields: '$optionalFields' })
    wiredRecord({ data, error }) {
        if (data) {
            this.record = data;
            this.recordLoaded = true;
        } else if (error) {
            // Without the record the rep can still send when the caller gave the number; the
            // lookups then hold only the page's record.
            this.record = undefined;
            this.recordLoaded = true;
        }
    }

    /** Which fields the rep may set (Business_Number_Id__c is read-only for some). */
    @wire(getObjectInfo, { objectApiName: OBJECT })
    wiredObjectInfo({ data }) {
        if (data) {
            this.objectInfo = data;
        }
    }

    @wire(graphql, {
        query: gql`
            query approvedWhatsAppTemplates {
                uiapi {
                    query {
                        WhatsApp_Template__c(
                            where: { Status__c: { eq: "APPROVED" } }
                            orderBy: { Name: { order: ASC } }
                            first: 200
                        ) {
                            edges {
                                node {
                                    Id
                                    Name {
                                        value
                                    }
                                    Template_Key__c {
                                        value
                                    }
                                    Language__c {
                                        value
                                    }
                                    Category__c {
                                        value
                                    }
                                    Body__c {
                                        value
                                    }
                                    Parameter_Count__c {
                                        value
                                    }
                                    Parameter_Names__c {
                                        value
                                    }
                                    Header_Type__c {
                                        value
                                    }
                                }
                            }
                        }
                    }
                }
            }
        `
    })
    wiredTemplates({ data, errors }) {
        if (data) {
            this.templates = templatesFromGraphql(data);
            this.templatesError = undefined;
        } else if (errors) {
            this.templates = [];
            this.templatesError = errors.map((e) => e.message).join(' ');
        }
    }

    // ---- what the template shows -------------------------------------------------------------

    /**
     * The caller's window, unless its expiry has passed since the caller last looked (a page left
     * open past the end of the window then offers a template, not a text WhatsApp would refuse).
     */
    get isOpen() {
        const open = this.windowOpen === true || this.windowOpen === 'true';
        const expires = Number(this.windowExpiresAt);
        const known = this.windowExpiresAt !== undefined && this.windowExpiresAt !== null && !Number.isNaN(expires);
        return open && (!known || expires > Date.now());
    }

    get windowLine() {
        if (!this.isOpen) {
            return WINDOW_CLOSED;
        }
        const left = remaining(this.windowExpiresAt, Date.now());
        if (left === null) {
            return WINDOW_OPEN_NO_TIME;
        }
        let duration;
        if (left.hours > 0) {
            duration = formatLabel(DURATION_HOURS, left.hours, left.minutes);
        } else if (left.minutes > 0) {
            duration = formatLabel(DURATION_MINUTES, left.minutes);
        } else {
            duration = DURATION_UNDER_MINUTE;
        }
        return formatLabel(WINDOW_OPEN, duration);
    }

    get windowLineClass() {
        return this.isOpen ? 'window-line window-line_open' : 'window-line window-line_closed';
    }

    get modeOptions() {
        return [
            { label: MODE_TEXT, value: MODE.TEXT },
            { label: MODE_TEMPLATE, value: MODE.TEMPLATE },
            { label: MODE_FILE, value: MODE.FILE },
            { label: MODE_LINK, value: MODE.LINK }
        ];
    }

    get isText() {
        return this.mode === MODE.TEXT;
    }

    get isTemplate() {
        return this.mode === MODE.TEMPLATE;
    }

    get isFile() {
        return this.mode === MODE.FILE;
    }

    get isLink() {
        return this.mode === MODE.LINK;
    }

    get isMedia() {
        return this.isFile || this.isLink;
    }

    /** Media only goes inside the window: outside it the composer says so and offers a template. */
    get mediaBlocked() {
        return this.isMedia && !this.isOpen;
    }

    get mediaAllowed() {
        return this.isMedia && this.isOpen;
    }

    /** Free text to a closed window: the re-engagement offer (a template now, the text later). */
    get reengaging() {
        return this.isText && !this.isOpen && this.body.trim() !== '';
    }

    get showTemplatePicker() {
        return this.isTemplate || this.reengaging;
    }

    get counter() {
        return formatLabel(COUNTER, this.body.length, MAX_BODY);
    }

    get templatesLoaded() {
        return this.templates !== undefined;
    }

    get templatesLoading() {
        return this.templates === undefined;
    }

    get noTemplates() {
        return this.templatesLoaded && !this.templatesError && this.templates.length === 0;
    }

    get templateLoadError() {
        return this.templatesError ? formatLabel(TEMPLATE_LOAD_ERROR, this.templatesError) : null;
    }

    get templateChoices() {
        return templateOptions(this.templates || []);
    }

    get selectedTemplate() {
        return (this.templates || []).find((template) => template.id === this.templateId);
    }

    get parameterInputs() {
        return parameterInputs(this.selectedTemplate, this.values);
    }

    get needsHeaderLink() {
        return needsHeaderLink(this.selectedTemplate);
    }

    get preview() {
        const template = this.selectedTemplate;
        return template ? previewSegments(template.body, this.values) : [];
    }

    get mediaTypeOptions() {
        return MEDIA_TYPES.map((type) => ({ label: TYPE_LABELS[type], value: type }));
    }

    get fileLine() {
        if (!this.file) {
            return null;
        }
        const type = mediaTypeFor(this.file.name);
        return formatLabel(FILE_SELECTED, this.file.name, type ? TYPE_LABELS[type] : '?');
    }

    get sendLabel() {
        return this.reengaging ? SEND_REENGAGEMENT : SEND;
    }

    /** Send waits for the record (its phone and lookups) unless there is nothing to read. */
    get sendDisabled() {
        return this.sending || (this.optionalFields.length > 0 && !this.recordLoaded) || this.mediaBlocked;
    }

    // ---- what the rep does -------------------------------------------------------------------

    handleMode(event) {
        this.mode = event.detail.value;
        this.error = undefined;
    }

    handleBody(event) {
        this.body = event.detail.value ?? '';
        this.confirmation = undefined;
    }

    handleTemplate(event) {
        this.templateId = event.detail.value;
        this.values = {};
        this.headerLink = '';
        this.error = undefined;
    }

    handleParameter(event) {
        const name = event.target.dataset.name;
        this.values = { ...this.values, [name]: event.detail.value ?? '' };
    }

    handleHeaderLink(event) {
        this.headerLink = event.detail.value ?? '';
    }

    handleUploadFinished(event) {
        const files = event.detail.files || [];
        if (files.length === 0) {
            return;
        }
        // The ContentDocument Id (069…): sfwa sends the file's latest version.
        const [first] = files;
        this.file = { id: first.documentId, name: first.name };
        this.error = mediaTypeFor(first.name) ? undefined : ERROR_FILE_UNSUPPORTED;
    }

    handleRemoveFile() {
        this.file = undefined;
        this.error = undefined;
    }

    handleCaption(event) {
        this.caption = event.detail.value ?? '';
    }

    handleUrl(event) {
        this.url = event.detail.value ?? '';
        const guessed = mediaTypeFor(this.url);
        if (guessed) {
            this.urlType = guessed;
        }
    }

    handleUrlType(event) {
        this.urlType = event.detail.value;
    }

    handleUseTemplate() {
        this.mode = MODE.TEMPLATE;
        this.error = undefined;
    }

    /** Cancel discards the draft (in the conversation) and closes the quick action. */
    handleCancel() {
        this.reset();
        this.error = undefined;
        this.confirmation = undefined;
        this.dispatchEvent(new CustomEvent('close'));
    }

    async handleSend() {
        this.confirmation = undefined;
        const draft = {
            mode: this.mode,
            windowOpen: this.isOpen,
            body: this.body,
            template: this.selectedTemplate,
            values: this.values,
            headerLink: this.headerLink,
            file: this.file,
            caption: this.caption,
            url: this.url,
            urlType: this.urlType
        };
        const problem = checkDraft(draft);
        if (problem) {
            this.error =
                problem.code === PROBLEM.PARAMETERS_MISSING
                    ? formatLabel(PROBLEM_LABELS[problem.code], problem.names.join(', '))
                    : PROBLEM_LABELS[problem.code];
            return;
        }
        const phone = choosePhone(this.objectApiName, this.record, this.toPhone);
        if (!phone.phone) {
            this.error = formatLabel(ERROR_NO_PHONE, phone.fill[0], phone.fill[1]);
            return;
        }
        const recordInput = buildRecord(draft, {
            toPhone: phone.phone,
            businessNumberId: businessNumberFor(this.businessNumberId, this.objectInfo),
            lookups: lookupFields(this.objectApiName, this.recordId, this.record)
        });
        this.error = undefined;
        this.sending = true;
        try {
            const created = await createRecord(recordInput);
            this.reset();
            this.confirmation = SENT_MESSAGE;
            this.dispatchEvent(new ShowToastEvent({ title: SENT_TITLE, message: SENT_MESSAGE, variant: 'success' }));
            this.dispatchEvent(new CustomEvent('sent', { detail: { id: created.id } }));
        } catch (e) {
            this.error = formatLabel(ERROR_SEND_FAILED, errorText(e) || ERROR_UNKNOWN);
        } finally {
            this.sending = false;
        }
    }

    /** After a send: empty inputs, same mode (a rep who sent a text is likely to send another). */
    reset() {
        this.body = '';
        this.templateId = undefined;
        this.values = {};
        this.headerLink = '';
        this.file = undefined;
        this.caption = '';
        this.url = '';
        this.urlType = '';
    }
}
