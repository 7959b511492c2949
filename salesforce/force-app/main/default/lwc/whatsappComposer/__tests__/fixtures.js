/** Builders for the composer's tests: getRecord results and the graphql template catalog. */

/** A getRecord result: `{ apiName, id, fields: { X: { value } } }` (nested records allowed). */
export function getRecordData(apiName, values, id = '003000000000001AAA') {
    const fields = {};
    for (const [name, value] of Object.entries(values)) {
        fields[name] = { value, displayValue: null };
    }
    return { apiName, id, fields };
}

/** A template as composer.js's templatesFromGraphql returns it. */
export function template(values) {
    const t = {
        id: 'a01000000000009AAA',
        key: 'x|en_US',
        name: 'x',
        language: 'en_US',
        category: 'UTILITY',
        body: '',
        parameterNames: null,
        parameterCount: null,
        headerType: '',
        ...values
    };
    let names = String(t.parameterNames ?? '')
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean);
    if (names.length === 0) {
        names = Array.from(String(t.body).matchAll(/\{\{\s*(\w+)\s*\}\}/g), (m) => m[1]);
    }
    return { ...t, names, named: names.some((n) => !/^\d+$/.test(n)) };
}

function node(id, values) {
    const wrapped = { Id: id };
    for (const [name, value] of Object.entries(values)) {
        wrapped[name] = { value };
    }
    return { node: wrapped };
}

/** The graphql wire's data for the approved templates (deliberately not in name order). */
export function templatesData() {
    return {
        uiapi: {
            query: {
                WhatsApp_Template__c: {
                    edges: [
                        node('a01000000000004AAA', {
                            Name: 'welcome_offer',
                            Template_Key__c: 'welcome_offer|en_US',
                            Language__c: 'en_US',
                            Category__c: 'MARKETING',
                            Body__c: 'Hello {{first_name}}, use code {{offer_code}} today.',
                            Parameter_Count__c: 2,
                            Parameter_Names__c: 'first_name,offer_code',
                            Header_Type__c: null
                        }),
                        node('a01000000000001AAA', {
                            Name: 'order_update',
                            Template_Key__c: 'order_update|en_US',
                            Language__c: 'en_US',
                            Category__c: 'UTILITY',
                            Body__c: 'Hi {{1}}, your order {{2}} has shipped.',
                            Parameter_Count__c: 2,
                            Parameter_Names__c: '1,2',
                            Header_Type__c: null
                        }),
                        node('a01000000000002AAA', {
                            Name: 'order_update',
                            Template_Key__c: 'order_update|pt_BR',
                            Language__c: 'pt_BR',
                            Category__c: 'UTILITY',
                            Body__c: 'Olá {{1}}, seu pedido {{2}} foi enviado.',
                            Parameter_Count__c: 2,
                            Parameter_Names__c: '1,2',
                            Header_Type__c: null
                        }),
                        node('a01000000000003AAA', {
                            Name: 'reconnect_hello',
                            Template_Key__c: 'reconnect_hello|en_US',
                            Language__c: 'en_US',
                            Category__c: 'UTILITY',
                            Body__c: 'Hi {{1}}, we have an answer for you. Reply to continue.',
                            Parameter_Count__c: 1,
                            Parameter_Names__c: '1',
                            Header_Type__c: null
                        })
                    ]
                }
            }
        }
    };
}
