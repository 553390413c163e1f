export const id = 700;
export const ids = [700];
export const modules = {

/***/ 67700:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   createBundle: () => (/* binding */ createBundle)
/* harmony export */ });
/* harmony import */ var _sigstore_bundle__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(61040);
/* harmony import */ var _sigstore_sign__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(15179);
/* harmony import */ var _bundle_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(94976);



/**
 * Creating cosign-3 bundles (kept apart from bundle.ts so that verifiers do not bundle
 * @sigstore/sign).
 */
/**
 * Signs the statement for `digest` into a bundle (JSON bytes). The DSSE `keyid` is removed:
 * sigstore-go/cosign skip a signature whose keyid does not match theirs (it is not signed anyway).
 */
async function createBundle(signer, witnesses, digest) {
    const builder = new _sigstore_sign__WEBPACK_IMPORTED_MODULE_1__/* .DSSEBundleBuilder */ .VV({ signer, witnesses });
    const bundle = await builder.create({ data: (0,_bundle_js__WEBPACK_IMPORTED_MODULE_2__/* .cosignStatement */ .ri)(digest), type: _bundle_js__WEBPACK_IMPORTED_MODULE_2__/* .PAYLOAD_TYPE_INTOTO */ .ox });
    const json = (0,_sigstore_bundle__WEBPACK_IMPORTED_MODULE_0__.bundleToJSON)(bundle);
    if (json.dsseEnvelope) {
        for (const s of json.dsseEnvelope.signatures)
            delete s.keyid;
    }
    return Buffer.from(JSON.stringify(json));
}


/***/ })

};
