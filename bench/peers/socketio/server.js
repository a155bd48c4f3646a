// The Socket.IO side of Charla's benchmarks: a multi-room chat written the
// way a typical Socket.IO user writes one (`socket.join(room)`,
// `io.to(room).emit(...)`), with the same events and payload shapes as
// Charla's wire contract so the load generator measures the same work:
// `join` answers the member list and tells the room, `say` gets a per-room
// id and is broadcast to every member (the sender included), `leave` and
// disconnect tell the room. No flood control, no history, no validation
// beyond the minimum: this is the fast, simple baseline.
//
// Listens on 127.0.0.1:$PORT only.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 0);
const httpServer = http.createServer();
const io = new Server(httpServer, { serveClient: false });

// Per-room message ids, as Charla numbers them: 1, 2, 3...
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

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`socket.io peer listening on 127.0.0.1:${httpServer.address().port}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
