import { LightningElement, api, wire } from 'lwc';
import { getRelatedListRecords } from 'lightning/uiRelatedListApi';
import { updateRecord } from 'lightning/uiRecordApi';
import { refreshApex } from '@salesforce/apex';
import {
    FIELDS,
    PAGE_SIZE,
    RELATED_LIST_ID,
    SORT_BY,
    buildConversation,
    errorText,
    formatLabel,
    isAtBottom,
    mergePages,
    nextRefreshDelay,
    refreshSignature
} from './conversation';
import { LABELS } from './labels';

/**
 * The WhatsApp conversation with the record's customer, as a chat timeline with the composer
 * below it, for Contact, Lead, Case and Account (and Person Account) record pages. Reads
 * WhatsApp_Message__c through the UI API only (the WhatsApp_Messages__r related list of the
 * Contact__c, Lead__c, Case__c or Account__c lookup): no Apex.
 *
 * Live without streaming: the newest page is refreshed on a timer that backs off while nothing
 * changes and stops while the tab is hidden. No empApi / Change Data Capture per open tab: that
 * spends the org's event-delivery allocation sfwa's own intake needs, ignores sharing and does
 * not run in the mobile app.
 */
export default class WhatsappConversation extends LightningElement {
    @api recordId;
    @api objectApiName;
    /** Card title; admins can change it in Lightning App Builder. */
    @api title = LABELS.title;

    labels = LABELS;

    /** The newest page as the wire gave it (kept whole: refreshApex needs this very object). */
    wiredNewest;
    newestRecords;
    newestNextPageToken = null;
    error;

    /** Older pages, oldest last, each `{ token, records, nextPageToken }`. */
    olderPages = [];
    /** Set only while an older page is wanted: the second wire stays idle until then. */
    olderParentId;
    olderPageToken;
    loadingOlder = false;
    olderError;

    /** Cancel in flight / failed, by record Id. */
    canceling = {};
    cancelErrors = {};

    now = Date.now();
    viewCache = {};

    // Live refresh state (see REFRESH_MIN_MS in conversation.js for the schedule).
    refreshTimer;
    refreshDelay;
    refreshGeneration = 0;
    changedSinceRefresh = false;
    lastSignature;
    connected = false;

    // Scroll state: follow new messages only while the rep is at the bottom.
    stickToBottom = true;
    scrolledOnce = false;
    lastNewestId;
    keepOffsetFromBottom;

    @wire(getRelatedListRecords, {
        parentRecordId: '$recordId',
        relatedListId: RELATED_LIST_ID,
        fields: FIELDS,
        sortBy: SORT_BY,
        pageSize: PAGE_SIZE
    })
    wiredMessages(result) {
        this.wiredNewest = result;
        const { data, error } = result;
        if (data) {
            this.newestRecords = data.records;
            this.newestNextPageToken = data.nextPageToken ?? null;
            this.error = undefined;
            this.now = Date.now();
            this.noteSignature(refreshSignature(data.records));
        } else if (error) {
            this.error = error;
            this.newestRecords = undefined;
        }
    }

    @wire(getRelatedListRecords, {
        parentRecordId: '$olderParentId',
        relatedListId: RELATED_LIST_ID,
        fields: FIELDS,
        sortBy: SORT_BY,
        pageSize: PAGE_SIZE,
        pageToken: '$olderPageToken'
    })
    wiredOlder({ data, error }) {
        const token = this.olderPageToken;
        if (!token) {
            return;
        }
        if (data) {
            const page = { token, records: data.records, nextPageToken: data.nextPageToken ?? null };
            const others = this.olderPages.filter((existing) => existing.token !== token);
            this.olderPages = [...others, page];
            this.olderError = undefined;
            this.loadingOlder = false;
        } else if (error) {
            this.olderError = errorText(error, this.labels.loadError);
            this.loadingOlder = false;
        }
    }

    connectedCallback() {
        this.connected = true;
        document.addEventListener('visibilitychange', this.onVisibilityChange);
        this.refreshDelay = nextRefreshDelay(undefined, true);
        if (this.pageVisible) {
            this.scheduleRefresh(this.refreshDelay);
        }
    }

    disconnectedCallback() {
        this.connected = false;
        document.removeEventListener('visibilitychange', this.onVisibilityChange);
        this.clearRefresh();
    }

    renderedCallback() {
        const scroller = this.refs && this.refs.scroller;
        if (!scroller) {
            return;
        }
        if (this.keepOffsetFromBottom !== undefined) {
            if (!this.loadingOlder) {
                // Older messages were added above: keep the message the rep was reading in place.
                scroller.scrollTop = scroller.scrollHeight - this.keepOffsetFromBottom;
                this.keepOffsetFromBottom = undefined;
                if (!this.hasOlder) {
                    // The last page removed the Load older button the rep had pressed: keep the
                    // keyboard focus in the conversation instead of losing it to the page.
                    scroller.focus();
                }
            }
            return;
        }
        const timeline = this.timeline;
        const newestId = timeline.length ? timeline[timeline.length - 1].id : undefined;
        const arrived = newestId !== this.lastNewestId;
        this.lastNewestId = newestId;
        if (!this.scrolledOnce || (arrived && this.stickToBottom)) {
            scroller.scrollTop = scroller.scrollHeight;
            this.scrolledOnce = true;
            this.stickToBottom = true;
        }
    }

    // ---- Live refresh -------------------------------------------------------------------

    get pageVisible() {
        return document.visibilityState !== 'hidden';
    }

    /** Bound once, so the same function is added and removed. */
    onVisibilityChange = () => this.handleVisibility();

    handleVisibility() {
        if (this.pageVisible) {
            // Back on the tab: show what happened meanwhile at once, then poll briskly.
            this.refreshNow();
        } else {
            this.clearRefresh();
        }
    }

    scheduleRefresh(delay) {
        this.clearRefresh();
        // eslint-disable-next-line @lwc/lwc/no-async-operation -- the live refresh polls on a timer instead of streaming (see the class comment); cleared on hide and disconnect
        this.refreshTimer = setTimeout(() => this.refresh(), delay);
    }

    clearRefresh() {
        if (this.refreshTimer) {
            clearTimeout(this.refreshTimer);
            this.refreshTimer = undefined;
        }
    }

    /** Refresh now and restart the back-off (after a send, a cancel, or the tab coming back). */
    refreshNow() {
        // The next wait after this refresh is the shortest one again.
        this.refreshDelay = undefined;
        this.refresh();
    }

    /** One refresh: ask the UI API for the newest page again, then schedule the next one. */
    async refresh() {
        this.clearRefresh();
        if (!this.connected || !this.pageVisible) {
            return;
        }
        const generation = ++this.refreshGeneration;
        this.now = Date.now();
        this.changedSinceRefresh = false;
        try {
            if (this.wiredNewest) {
                await refreshApex(this.wiredNewest);
            }
        } catch {
            // The wire reports a failed read itself (this.error); keep polling.
        }
        if (generation !== this.refreshGeneration || !this.connected || !this.pageVisible) {
            return;
        }
        this.refreshDelay = nextRefreshDelay(this.refreshDelay, this.changedSinceRefresh);
        this.scheduleRefresh(this.refreshDelay);
    }

    /** Called with each newest page: a change brings the refresh back to its fastest pace. */
    noteSignature(signature) {
        const changed = this.lastSignature !== undefined && signature !== this.lastSignature;
        this.lastSignature = signature;
        if (!changed) {
            return;
        }
        this.changedSinceRefresh = true;
        if (this.refreshTimer) {
            this.refreshDelay = nextRefreshDelay(this.refreshDelay, true);
            this.scheduleRefresh(this.refreshDelay);
        }
    }

    // ---- Events -------------------------------------------------------------------------

    handleSent() {
        this.stickToBottom = true;
        this.refreshNow();
    }

    handleScroll(event) {
        this.stickToBottom = isAtBottom(event.target);
    }

    handleLoadOlder() {
        const token = this.olderPages.length
            ? this.olderPages[this.olderPages.length - 1].nextPageToken
            : this.newestNextPageToken;
        if (!token || this.loadingOlder) {
            return;
        }
        const scroller = this.refs && this.refs.scroller;
        if (scroller) {
            this.keepOffsetFromBottom = scroller.scrollHeight - scroller.scrollTop;
        }
        this.loadingOlder = true;
        this.olderError = undefined;
        this.olderParentId = this.recordId;
        this.olderPageToken = token;
    }

    async handleCancel(event) {
        const id = event.currentTarget.dataset.recordId;
        if (!id || this.canceling[id]) {
            return;
        }
        this.canceling = { ...this.canceling, [id]: true };
        const { [id]: previous, ...otherErrors } = this.cancelErrors;
        this.cancelErrors = previous === undefined ? this.cancelErrors : otherErrors;
        try {
            await updateRecord({ fields: { Id: id, Status__c: 'Canceled' } });
        } catch (error) {
            this.cancelErrors = {
                ...this.cancelErrors,
                [id]: formatLabel(this.labels.cancelError, errorText(error, this.labels.failedGeneric))
            };
        }
        const { [id]: done, ...stillCanceling } = this.canceling;
        this.canceling = done === undefined ? this.canceling : stillCanceling;
        this.refreshNow();
    }

    // ---- View ---------------------------------------------------------------------------

    get loaded() {
        return this.newestRecords !== undefined;
    }

    /** The composer shows once we know the conversation, or that we cannot read it. */
    get showComposer() {
        return this.loaded || Boolean(this.error);
    }

    get records() {
        return mergePages(
            this.newestRecords,
            this.olderPages.map((page) => page.records)
        );
    }

    /**
     * The view model, built once per change of its inputs (the template reads it a dozen times a
     * render). Kept in a plain object's property: mutating it is not observed, so caching during
     * render does not schedule another render.
     */
    get conversation() {
        const inputs = [this.newestRecords, this.olderPages, this.now];
        const cached = this.viewCache.entry;
        if (!cached || cached.inputs.some((input, index) => input !== inputs[index])) {
            this.viewCache.entry = { inputs, view: buildConversation(this.records, this.now, this.labels) };
        }
        return this.viewCache.entry.view;
    }

    get timeline() {
        const canceling = this.canceling;
        const cancelErrors = this.cancelErrors;
        return this.conversation.timeline.map((item) => ({
            ...item,
            canceling: Boolean(canceling[item.id]),
            cancelError: cancelErrors[item.id] ?? null
        }));
    }

    get isEmpty() {
        return this.loaded && this.conversation.isEmpty;
    }

    get hasMessages() {
        return this.loaded && !this.conversation.isEmpty;
    }

    get hasOlder() {
        const last = this.olderPages[this.olderPages.length - 1];
        return Boolean(last ? last.nextPageToken : this.newestNextPageToken);
    }

    get windowBanner() {
        return this.conversation.window;
    }

    get toPhone() {
        return this.conversation.target.toPhone ?? undefined;
    }

    get businessNumberId() {
        return this.conversation.target.businessNumberId ?? undefined;
    }

    get windowOpen() {
        return this.windowBanner.open;
    }

    get windowExpiresAt() {
        return this.windowBanner.expiresAt ?? undefined;
    }

    get errorMessage() {
        return errorText(this.error, this.labels.loadError);
    }
}
