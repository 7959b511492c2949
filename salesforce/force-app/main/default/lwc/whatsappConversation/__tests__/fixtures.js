/** Builders for WhatsApp_Message__c records in the shape getRelatedListRecords returns. */
let counter = 0;

export function uiRecord(id, values) {
    const fields = {};
    for (const [name, value] of Object.entries(values)) {
        fields[name] = { value, displayValue: null };
    }
    return { apiName: 'WhatsApp_Message__c', id, fields };
}

export function inbound(values) {
    counter += 1;
    return uiRecord(`a00000000000${String(counter).padStart(3, '0')}AAA`, {
        Name: `WAM-${String(counter).padStart(6, '0')}`,
        Direction__c: 'Inbound',
        Status__c: 'Received',
        Message_Type__c: 'Text',
        ...values
    });
}

export function outbound(values) {
    counter += 1;
    return uiRecord(`a00000000000${String(counter).padStart(3, '0')}AAA`, {
        Name: `WAM-${String(counter).padStart(6, '0')}`,
        Direction__c: 'Outbound',
        Status__c: 'Queued',
        Message_Type__c: 'Text',
        ...values
    });
}

export function relatedList(records, { currentPageToken = '0', nextPageToken = null } = {}) {
    return {
        records,
        count: records.length,
        currentPageToken,
        nextPageToken,
        previousPageToken: null,
        pageSize: 50,
        listReference: {
            relatedListId: 'WhatsApp_Messages__r',
            inContextOfRecordId: '003000000000001AAA'
        }
    };
}
