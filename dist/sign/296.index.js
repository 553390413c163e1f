export const id = 296;
export const ids = [296];
export const modules = {

/***/ 30296:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   DEFAULT_FULCIO_URL: () => (/* reexport safe */ _sigstore_urls_js__WEBPACK_IMPORTED_MODULE_5__.j),
/* harmony export */   DEFAULT_REKOR_URL: () => (/* reexport safe */ _sigstore_urls_js__WEBPACK_IMPORTED_MODULE_5__.A),
/* harmony export */   KeylessSigner: () => (/* binding */ KeylessSigner),
/* harmony export */   rekorSetAnnotation: () => (/* binding */ rekorSetAnnotation)
/* harmony export */ });
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(77598);
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_crypto__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var _sigstore_bundle__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(61040);
/* harmony import */ var _sigstore_sign__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(15179);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(32863);
/* harmony import */ var _payload_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(29192);
/* harmony import */ var _sigstore_urls_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(58157);






/**
 * Keyless signing (GitHub OIDC token → Fulcio certificate, Rekor v1 transparency log) through
 * @sigstore/sign. One ephemeral P-256 key and ONE Fulcio certificate per run, reused for every
 * signature of the run (a certificate is valid for 10 minutes).
 *
 * IMPORTANT: containers/image (bootc, rpm-ostree, podman) cannot enforce these signatures for
 * GitHub Actions identities: its `fulcio` policy matches only `subjectEmail`, and GitHub workflow
 * certificates carry a URI SAN (reference/signing.md §5.6). Keyless is for `cosign verify
 * --certificate-identity …` users; bootc clients need the key-based signature.
 */

/** The Rekor v1 SET in cosign's `dev.sigstore.cosign/bundle` annotation shape (signing.md §5.4). */
function rekorSetAnnotation(bundle) {
    const e = bundle.verificationMaterial?.tlogEntries?.[0];
    if (!e?.inclusionPromise)
        return undefined;
    return JSON.stringify({
        SignedEntryTimestamp: e.inclusionPromise.signedEntryTimestamp,
        Payload: {
            body: e.canonicalizedBody,
            integratedTime: Number(e.integratedTime),
            logIndex: Number(e.logIndex),
            logID: Buffer.from(e.logId.keyId, 'base64').toString('hex'),
        },
    });
}
function certPem(der) {
    const b64 = der
        .toString('base64')
        .replace(/(.{64})/g, '$1\n')
        .replace(/\n$/, '');
    return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}
class KeylessSigner {
    opts;
    key = node_crypto__WEBPACK_IMPORTED_MODULE_0___default().generateKeyPairSync('ec', { namedCurve: 'P-256' });
    fulcio;
    certificate;
    witnesses;
    constructor(opts = {}) {
        this.opts = opts;
        const keyHolder = {
            sign: async (data) => ({
                signature: node_crypto__WEBPACK_IMPORTED_MODULE_0___default().sign('sha256', data, this.key.privateKey),
                key: { $case: 'publicKey', publicKey: this.key.publicKey.export({ format: 'pem', type: 'spki' }).toString() },
            }),
        };
        this.fulcio = new _sigstore_sign__WEBPACK_IMPORTED_MODULE_2__/* .FulcioSigner */ .$o({
            identityProvider: opts.identityProvider ?? new _sigstore_sign__WEBPACK_IMPORTED_MODULE_2__/* .CIContextProvider */ .Zk('sigstore'),
            fulcioBaseURL: opts.fulcioURL ?? _sigstore_urls_js__WEBPACK_IMPORTED_MODULE_5__/* .DEFAULT_FULCIO_URL */ .j,
            keyHolder,
            timeout: opts.timeout,
        });
        this.witnesses = [new _sigstore_sign__WEBPACK_IMPORTED_MODULE_2__/* .RekorWitness */ .fU({ rekorBaseURL: opts.rekorURL ?? _sigstore_urls_js__WEBPACK_IMPORTED_MODULE_5__/* .DEFAULT_REKOR_URL */ .A, timeout: opts.timeout })];
    }
    /** The Fulcio leaf certificate (PEM), after the first signature. */
    get certificatePem() {
        return this.certificate;
    }
    /** The certificate's subject alternative name (the signing identity), after the first signature. */
    get identity() {
        return this.certificate ? new (node_crypto__WEBPACK_IMPORTED_MODULE_0___default().X509Certificate)(this.certificate).subjectAltName : undefined;
    }
    /** Obtains the Fulcio certificate now (one Fulcio request, nothing logged in Rekor). */
    async ensureCertificate() {
        if (!this.certificate)
            await this.signer.sign(Buffer.from('keel: certificate request'));
        return this.certificate;
    }
    /** A @sigstore/sign Signer: the first call obtains the certificate, later calls reuse it. */
    signer = {
        sign: async (data) => {
            if (!this.certificate) {
                let s;
                try {
                    s = await this.fulcio.sign(data);
                }
                catch (e) {
                    throw keylessError(e, this.opts.fulcioURL ?? _sigstore_urls_js__WEBPACK_IMPORTED_MODULE_5__/* .DEFAULT_FULCIO_URL */ .j);
                }
                if (s.key.$case !== 'x509Certificate')
                    throw new Error('Fulcio returned no certificate');
                this.certificate = s.key.certificate;
                return s;
            }
            return {
                signature: node_crypto__WEBPACK_IMPORTED_MODULE_0___default().sign('sha256', data, this.key.privateKey),
                key: { $case: 'x509Certificate', certificate: this.certificate },
            };
        },
    };
    /**
     * Signs a simple-signing payload and returns the legacy layer annotations cosign writes for a
     * keyless signature: signature, certificate, and the Rekor SET bundle.
     */
    async legacyAnnotations(payload) {
        const builder = new _sigstore_sign__WEBPACK_IMPORTED_MODULE_2__/* .MessageSignatureBundleBuilder */ .z3({ signer: this.signer, witnesses: this.witnesses });
        let json;
        try {
            json = (0,_sigstore_bundle__WEBPACK_IMPORTED_MODULE_1__.bundleToJSON)(await builder.create({ data: payload }));
        }
        catch (e) {
            throw keylessError(e, this.opts.rekorURL ?? _sigstore_urls_js__WEBPACK_IMPORTED_MODULE_5__/* .DEFAULT_REKOR_URL */ .A);
        }
        const sig = json.messageSignature?.signature;
        const raw = json.verificationMaterial?.certificate?.rawBytes ??
            json.verificationMaterial?.x509CertificateChain?.certificates[0]?.rawBytes;
        if (!sig || !raw)
            throw new Error('the keyless bundle lacks a signature or certificate');
        const out = {
            [_payload_js__WEBPACK_IMPORTED_MODULE_4__/* .ANNOTATION_SIGNATURE */ .LR]: sig,
            [_payload_js__WEBPACK_IMPORTED_MODULE_4__/* .ANNOTATION_CERTIFICATE */ .MF]: certPem(Buffer.from(raw, 'base64')),
        };
        const set = rekorSetAnnotation(json);
        if (set)
            out[_payload_js__WEBPACK_IMPORTED_MODULE_4__/* .ANNOTATION_BUNDLE */ .DZ] = set;
        return out;
    }
}
function keylessError(e, service) {
    const msg = e instanceof Error ? e.message : String(e);
    const cause = e?.cause;
    const detail = cause instanceof Error ? `: ${cause.message}` : typeof cause === 'string' ? `: ${cause}` : '';
    if (/identity token/i.test(msg)) {
        return new _errors_js__WEBPACK_IMPORTED_MODULE_3__/* .UserError */ .yo(`keyless signing needs an OIDC token: give the job 'permissions: id-token: write' (or set SIGSTORE_ID_TOKEN)${detail}`);
    }
    return new _errors_js__WEBPACK_IMPORTED_MODULE_3__/* .UserError */ .yo(`keyless signing failed against ${service}: ${msg}${detail}`);
}


/***/ })

};
