import { LightningElement, api, wire } from 'lwc';
import { getRelatedListRecords } from 'lightning/uiRelatedListApi';
import { FIELDS, RELATED_LIST_ID, OBJECT, buildConversation } from './conversation';
import TITLE from '@salesforce/label/c.WA_Conversation_Title';

/** How often the window banner recounts its remaining time. */
const TICK_MS = 60 * 1000;

/**
 * The WhatsApp conversation with the record's customer, as a chat timeline, for Contact, Lead
 * and Case record pages. Reads WhatsApp_Message__c through the UI API only (the Contact__c,
 * Lead__c or Case__c lookup's WhatsApp_Messages__r related list): no Apex.
 */
export default class WhatsappConversation extends LightningElement {
    @api recordId;
    @api objectApiName;
    /** Card title; admins can change it in Lightning App Builder. */
    @api title = TITLE;

    records;
    error;
    now = Date.now();
    timer;

    @wire(getRelatedListRecords, {
        parentRecordId: '$recordId',
        relatedListId: RELATED_LIST_ID,
        fields: FIELDS,
        sortBy: [`-${OBJECT}.CreatedDate`],
        pageSize: 200
    })
    wiredMessages({ data, error }) {
        if (data) {
            this.records = data.records;
            this.error = undefined;
            this.now = Date.now();
        } else if (error) {
            this.error = error;
            this.records = undefined;
        }
    }

    connectedCallback() {
        // eslint-disable-next-line @lwc/lwc/no-async-operation
        this.timer = setInterval(() => {
            this.now = Date.now();
        }, TICK_MS);
    }

    disconnectedCallback() {
        clearInterval(this.timer);
    }

    get loaded() {
        return this.records !== undefined;
    }

    get conversation() {
        return buildConversation(this.records || [], this.now);
    }

    get timeline() {
        return this.conversation.timeline;
    }

    get isEmpty() {
        return this.loaded && this.conversation.isEmpty;
    }

    get hasMessages() {
        return this.loaded && !this.conversation.isEmpty;
    }

    get windowBanner() {
        return this.conversation.window;
    }

    get errorText() {
        const body = this.error && this.error.body;
        if (Array.isArray(body)) {
            return body.map((e) => e.message).join(', ');
        }
        return (body && body.message) || 'The WhatsApp messages could not be loaded.';
    }
}
