// test-kind: unit
import { afterEach, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RegistryClient } from '../../actions/lib/oci/client.js';
import { retryPolicy } from '../../actions/lib/retry.js';

/**
 * Tag listing of the one OCI client: it follows the registry's `Link: rel="next"` pages, and a
 * next link to another host is refused before anything is sent there (the request would carry
 * this registry's credentials). Two loopback servers stand in for a hostile registry and the
 * host it points at.
 */
const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(handler: http.RequestListener): Promise<string> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A registry demanding Basic auth whose tag pages are `pages`; `next(i)` is the link after page i. */
function registry(pages: string[][], next: (i: number) => string | undefined): http.RequestListener {
  return (req, res) => {
    if (!req.headers.authorization) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
      return;
    }
    const i = Number(new URL(req.url!, 'http://x').searchParams.get('page') ?? 0);
    const link = next(i);
    res.writeHead(200, { 'content-type': 'application/json', ...(link ? { link: `<${link}>; rel="next"` } : {}) });
    res.end(JSON.stringify({ name: 'acme/os', tags: pages[i] }));
  };
}

const clientFor = (host: string) =>
  new RegistryClient({
    registry: host,
    tlsVerify: false,
    credentials: { username: 'u', password: 'registry-secret', source: 'inputs' },
    retry: retryPolicy({ attempts: 1 }),
  });

describe('listTags', () => {
  it('follows relative next links through every page', async () => {
    const pages = [['a', 'b'], ['c', 'd'], ['e']];
    const host = await serve(registry(pages, (i) => (i < 2 ? `/v2/acme/os/tags/list?page=${i + 1}&n=2` : undefined)));
    expect(await clientFor(host).listTags('acme/os', 2)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('follows an absolute next link on the same host', async () => {
    let self = '';
    self = await serve(
      registry([['a'], ['b']], (i) => (i === 0 ? `http://${self}/v2/acme/os/tags/list?page=1` : undefined)),
    );
    expect(await clientFor(self).listTags('acme/os')).toEqual(['a', 'b']);
  });

  it('refuses a next link to another host, sending it nothing (no credentials leak)', async () => {
    const seen: (string | undefined)[] = [];
    const elsewhere = await serve((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"tags":["x"]}');
    });
    const host = await serve(
      registry([['a']], (i) => (i === 0 ? `http://${elsewhere}/v2/acme/os/tags/list?page=1` : undefined)),
    );
    await expect(clientFor(host).listTags('acme/os')).rejects.toThrow(
      new RegExp(
        `sent a next-page link to another host \\(${elsewhere.replace(/\./g, '\\.')}\\); refusing to follow it`,
      ),
    );
    expect(seen).toEqual([]);
  });
});
