/**
 * Every string the conversation shows, as Custom Labels (translatable in Setup → Translation
 * Workbench). conversation.js takes this object as `labels`, so its pure functions stay testable.
 */
import title from '@salesforce/label/c.WA_Conversation_Title';
import loading from '@salesforce/label/c.WA_Conversation_Loading';
import loadError from '@salesforce/label/c.WA_Conversation_Load_Error';
import empty from '@salesforce/label/c.WA_Conversation_Empty';
import list from '@salesforce/label/c.WA_Conversation_List';
import loadOlder from '@salesforce/label/c.WA_Conversation_Load_Older';
import loadingOlder from '@salesforce/label/c.WA_Conversation_Loading_Older';
import fromCustomer from '@salesforce/label/c.WA_Conversation_From_Customer';
import toCustomer from '@salesforce/label/c.WA_Conversation_To_Customer';
import openAttachment from '@salesforce/label/c.WA_Conversation_Open_Attachment';
import windowOpen from '@salesforce/label/c.WA_Conversation_Window_Open';
import windowClosed from '@salesforce/label/c.WA_Conversation_Window_Closed';
import windowNeverOpened from '@salesforce/label/c.WA_Conversation_Window_Never_Opened';
import hoursMinutes from '@salesforce/label/c.WA_Conversation_Duration_Hours_Minutes';
import hours from '@salesforce/label/c.WA_Conversation_Duration_Hours';
import minutes from '@salesforce/label/c.WA_Conversation_Duration_Minutes';
import lessThanMinute from '@salesforce/label/c.WA_Conversation_Duration_Under_Minute';
import statusQueued from '@salesforce/label/c.WA_Conversation_Status_Queued';
import statusScheduled from '@salesforce/label/c.WA_Conversation_Status_Scheduled';
import statusWaiting from '@salesforce/label/c.WA_Conversation_Status_Waiting';
import statusSending from '@salesforce/label/c.WA_Conversation_Status_Sending';
import statusSent from '@salesforce/label/c.WA_Conversation_Status_Sent';
import statusDelivered from '@salesforce/label/c.WA_Conversation_Status_Delivered';
import statusRead from '@salesforce/label/c.WA_Conversation_Status_Read';
import statusFailed from '@salesforce/label/c.WA_Conversation_Status_Failed';
import statusCanceled from '@salesforce/label/c.WA_Conversation_Status_Canceled';
import waitingExplained from '@salesforce/label/c.WA_Conversation_Waiting_Explained';
import failedGeneric from '@salesforce/label/c.WA_Conversation_Failed_Generic';
import templateNamed from '@salesforce/label/c.WA_Conversation_Template_Named';
import templateMessage from '@salesforce/label/c.WA_Conversation_Template_Message';
import mediaNamed from '@salesforce/label/c.WA_Conversation_Media_Named';
import cancel from '@salesforce/label/c.WA_Conversation_Cancel';
import cancelMessage from '@salesforce/label/c.WA_Conversation_Cancel_Message';
import cancelError from '@salesforce/label/c.WA_Conversation_Cancel_Error';

export const LABELS = Object.freeze({
    title,
    loading,
    loadError,
    empty,
    list,
    loadOlder,
    loadingOlder,
    fromCustomer,
    toCustomer,
    openAttachment,
    windowOpen,
    windowClosed,
    windowNeverOpened,
    hoursMinutes,
    hours,
    minutes,
    lessThanMinute,
    statusQueued,
    statusScheduled,
    statusWaiting,
    statusSending,
    statusSent,
    statusDelivered,
    statusRead,
    statusFailed,
    statusCanceled,
    waitingExplained,
    failedGeneric,
    templateNamed,
    templateMessage,
    mediaNamed,
    cancel,
    cancelMessage,
    cancelError
});
