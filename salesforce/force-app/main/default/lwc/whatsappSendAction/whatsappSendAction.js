import { LightningElement, api, wire } from 'lwc';
import { getRelatedListRecords } from 'lightning/uiRelatedListApi';
import { CloseActionScreenEvent } from 'lightning/actions';
import { FIELDS, OBJECT, PAGE_SIZE, RELATED_LIST_ID, windowFromMessages, wireErrorText } from './sendAction';
import TITLE from '@salesforce/label/c.WA_Composer_Action_Title';
import LOADING from '@salesforce/label/c.WA_Composer_Action_Loading';
import WINDOW_UNKNOWN from '@salesforce/label/c.WA_Composer_Action_Window_Unknown';
import ERROR_UNKNOWN from '@salesforce/label/c.WA_Composer_Error_Unknown';

/**
 * The "Send WhatsApp" quick action (screen action) on Contact, Lead, Case and Account (Person
 * Accounts included): opens the composer for the record. The customer-service window comes from the
 * record's latest inbound WhatsApp message (the WhatsApp_Messages__r related list, read through the
 * UI API as the rep); when that cannot be read the window counts as closed, and the action says so.
 * The composer reads the number from the record (MobilePhone first). The action closes when the
 * rep cancels or after a send.
 */
export default class WhatsappSendAction extends LightningElement {
    @api recordId;
    @api objectApiName;

    labels = { TITLE, LOADING };

    messages;
    error;

    @wire(getRelatedListRecords, {
        parentRecordId: '$recordId',
        relatedListId: RELATED_LIST_ID,
        fields: FIELDS,
        sortBy: [`-${OBJECT}.CreatedDate`],
        pageSize: PAGE_SIZE
    })
    wiredMessages({ data, error }) {
        if (data) {
            this.messages = data.records;
            this.error = undefined;
        } else if (error) {
            this.messages = undefined;
            this.error = error;
        }
    }

    get loading() {
        return this.messages === undefined && this.error === undefined;
    }

    get window() {
        return windowFromMessages(this.messages || [], Date.now());
    }

    get windowOpen() {
        return !this.error && this.window.open;
    }

    get windowExpiresAt() {
        return this.windowOpen ? this.window.expiresAt : undefined;
    }

    get businessNumberId() {
        return this.error ? undefined : (this.window.businessNumberId ?? undefined);
    }

    get windowUnknown() {
        if (!this.error) {
            return null;
        }
        return WINDOW_UNKNOWN.replace('{0}', wireErrorText(this.error, ERROR_UNKNOWN));
    }

    handleDone() {
        this.dispatchEvent(new CloseActionScreenEvent());
    }
}
