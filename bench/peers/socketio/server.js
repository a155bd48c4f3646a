// The Socket.IO side of Charla's benchmarks: a multi-room chat written the
// way a typical Socket.IO user writes one (`socket.join(room)`,
// `io.to(room).emit(...)`), with the same events and payload shapes as
// Charla's wire contract so the load generator measures the same work:
// `join` answers the member list and tells the room, `say` gets a per-room
// id and is broadcast to every member (the sender included), `leave` and
// disconnect tell the room. No flood control, no history, no validation
// beyond the minimum: this is the fast, simple baseline.
//
// With REDIS_URL set (`redis://127.0.0.1:PORT`), several of these processes
// share rooms the way Socket.IO's documentation scales out: the
// `@socket.io/redis-adapter` on a `redis` (node-redis) publisher and
// subscriber pair, so `io.to(room).emit(...)` reaches the room's members on
// every process. What stays per process, as in the typical code: the
// message ids (each process numbers its own, so two processes reuse ids)
// and the `count` in join and presence events (this process's members).
//
// Listens on 127.0.0.1:$PORT only, once the Redis clients (if any) are
// connected.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 0);
const redisUrl = process.env.REDIS_URL || "";
const httpServer = http.createServer();
const io = new Server(httpServer, { serveClient: false });

// Per-room message ids, as Charla numbers them: 1, 2, 3... (per process).
const lastIds = new Map();
let guests = 0;

io.on("connection", (socket) => {
  const name = String(socket.handshake.query.name || `guest-${String(guests++ % 10000).padStart(4, "0")}`);
  const member = { id: socket.id, name };

  socket.on("join", (room, ack) => {
    socket.join(room);
    const count = io.sockets.adapter.rooms.get(room)?.size ?? 0;
    socket.to(room).emit("presence", { room, event: "join", member, count });
    if (typeof ack === "function") ack({ room, count });
  });

  socket.on("leave", (room, ack) => {
    socket.leave(room);
    const count = io.sockets.adapter.rooms.get(room)?.size ?? 0;
    io.to(room).emit("presence", { room, event: "leave", member, count });
    if (typeof ack === "function") ack({ room });
  });

  socket.on("say", ({ room, text }) => {
    if (!socket.rooms.has(room)) return;
    const id = (lastIds.get(room) || 0) + 1;
    lastIds.set(room, id);
    io.to(room).emit("message", { room, id, from: member, text, at: Date.now() });
  });

  socket.on("disconnecting", () => {
    for (const room of socket.rooms) {
      if (room === socket.id) continue;
      const count = (io.sockets.adapter.rooms.get(room)?.size ?? 1) - 1;
      socket.to(room).emit("presence", { room, event: "leave", member, count });
    }
  });
});

// The Redis adapter: one client publishes, a duplicate subscribes (the
// adapter's documented set-up). Resolves once both are connected.
async function useRedis(url) {
  const { createClient } = require("redis");
  const { createAdapter } = require("@socket.io/redis-adapter");
  const pubClient = createClient({ url });
  const subClient = pubClient.duplicate();
  for (const client of [pubClient, subClient]) {
    client.on("error", (error) => console.error(`redis: ${error.message}`));
  }
  await Promise.all([pubClient.connect(), subClient.connect()]);
  io.adapter(createAdapter(pubClient, subClient));
  return [pubClient, subClient];
}

async function main() {
  const redisClients = redisUrl ? await useRedis(redisUrl) : [];
  httpServer.listen(port, "127.0.0.1", () => {
    const adapter = redisUrl ? `, redis adapter on ${redisUrl.replace(/\/\/[^@/]*@/, "//***@")}` : "";
    console.log(`socket.io peer listening on 127.0.0.1:${httpServer.address().port}${adapter}`);
  });
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => {
      io.close();
      for (const client of redisClients) client.destroy();
      process.exit(0);
    });
  }
}

main().catch((error) => {
  console.error(`socket.io peer: cannot start: ${error.message}`);
  process.exit(1);
});
