// What the page's modules share: the server's /info, the model version it serves and the admin
// token. (Each panel keeps the rest of its state to itself.)

export const state = {
  info: null, // GET /info
  version: null, // the active model version: image URLs pin it (immutable browser caching)
  token: "", // the admin token: in memory only, never stored
};
