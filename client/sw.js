// Service worker: the client opens offline. At install it caches every file precache.json lists
// (page, npm packages, model, face detector) under that list's version; requests are answered
// from the cache first. precache.json itself goes to the network first, so the page notices a
// new version (app.js registers sw.js?v=<version>, which installs the new cache).

const VERSION = new URL(self.location).searchParams.get("v") ?? "unversioned";
const CACHE = `emotion-client-${VERSION}`;
const LIST = new URL("precache.json", self.registration.scope).href;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const list = await (await fetch(LIST, { cache: "no-store" })).json();
    const cache = await caches.open(CACHE);
    await cache.addAll(list.files.map((file) => new URL(file, self.registration.scope).href));
    await cache.put(LIST, new Response(JSON.stringify(list), { headers: { "Content-Type": "application/json" } }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith("emotion-client-") && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || !request.url.startsWith(self.registration.scope)) return;
  if (request.url.split("?")[0] === LIST) {
    event.respondWith(fetch(request).catch(() => caches.match(LIST)));
    return;
  }
  event.respondWith((async () => (await caches.match(request, { ignoreSearch: true })) ?? fetch(request))());
});
