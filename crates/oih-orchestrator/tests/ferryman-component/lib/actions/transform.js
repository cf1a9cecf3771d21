'use strict';

// The input's data says what to do:
// - `crashOnce: <path>`: exit the process unless <path> exists (it is created first), so the
//   unacknowledged input is redelivered to the restarted process;
// - `fail: <message>`: emit an error;
// - `snapshot: <object>`: emit it as the step's snapshot;
// - `rebound: true`: rebound the first delivery; the redelivered one goes on;
// then emit `{doubled: n * 2, reboundIteration}` as data.
const fs = require('fs');

async function transform(msg, cfg, snapshot, headers) {
    const data = msg.data || {};
    if (data.crashOnce && !fs.existsSync(data.crashOnce)) {
        fs.writeFileSync(data.crashOnce, String(process.pid));
        process.exit(3);
    }
    if (data.fail) {
        await this.emit('error', new Error(data.fail));
        return;
    }
    if (data.snapshot) {
        await this.emit('snapshot', data.snapshot);
    }
    const iteration = Number(headers.reboundIteration || 0);
    if (data.rebound && iteration === 0) {
        await this.emit('rebound', new Error('not yet'));
        return;
    }
    await this.emit('data', {
        data: { doubled: data.n * 2, reboundIteration: iteration },
        metadata: msg.metadata || {},
    });
}

module.exports.process = transform;
