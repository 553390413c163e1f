import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import addDraft2019Formats from 'ajv-formats-draft2019';
// The official CycloneDX schemas as the library ships them. Its own validator reads them from
// disk next to its sources (`__dirname/../res`), which does not exist inside an ncc bundle, so
// they are imported here and bundled; the Ajv setup below is the library's own.
import bom16 from '../../../node_modules/@cyclonedx/cyclonedx-library/res/schema/bom-1.6.SNAPSHOT.schema.json' with { type: 'json' };
import jsf082 from '../../../node_modules/@cyclonedx/cyclonedx-library/res/schema/jsf-0.82.SNAPSHOT.schema.json' with { type: 'json' };
import spdxSchema from '../../../node_modules/@cyclonedx/cyclonedx-library/res/schema/spdx.SNAPSHOT.schema.json' with { type: 'json' };

/** Validation problems (Ajv's error objects), or null when `json` is valid CycloneDX 1.6. */
export type SchemaErrors = unknown[] | null;

let validator: ((data: unknown) => boolean) & { errors?: unknown[] | null };

function compile() {
  const ajv = new Ajv({
    useDefaults: false,
    strict: false,
    strictSchema: false,
    addUsedSchema: false,
    schemas: {
      'http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json': spdxSchema,
      'http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json': jsf082,
    },
  });
  addFormats.default(ajv);
  addDraft2019Formats(ajv, { formats: ['idn-email'] });
  ajv.addFormat('iri-reference', true);
  return ajv.compile(bom16);
}

/** Validates a CycloneDX document against the official 1.6 JSON schema. */
export function cyclonedx16Errors(json: string): SchemaErrors {
  validator ??= compile();
  return validator(JSON.parse(json)) ? null : (validator.errors ?? []);
}
