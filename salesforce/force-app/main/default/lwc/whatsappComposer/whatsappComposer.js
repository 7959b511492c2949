import { LightningElement, api } from 'lwc';

/**
 * The rep's composer: a text inside the customer-service window, a template outside it, a
 * re-engagement offer when a rep types free text to a closed window, a Salesforce File or a
 * public link as media. Creates the WhatsApp_Message__c through the UI API (no Apex).
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
}
