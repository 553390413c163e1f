/**
 * The public Sigstore instance, the keyless defaults. Kept apart from keyless.ts so that
 * reading them does not load the Sigstore client (sign loads it only when keyless is asked for).
 */
export const DEFAULT_FULCIO_URL = 'https://fulcio.sigstore.dev';
export const DEFAULT_REKOR_URL = 'https://rekor.sigstore.dev';
