/**
 * Hands delivered WhatsApp_Outbound__e events to WhatsAppOutboundTestProbe, which notes them only
 * while an Apex test runs (see there why the package ships a subscriber at all).
 */
trigger WhatsAppOutboundTestProbeTrigger on WhatsApp_Outbound__e(after insert) {
    WhatsAppOutboundTestProbe.observe(Trigger.new);
}
