'use strict';

// The same transform as the jsonata step of bench/flows/oih.json and oih-async.json (an
// absent seq is left out of the JSON, as the synchronous flow has none).
async function transform(msg) {
    const order = msg.data || {};
    await this.emit('data', {
        data: {
            // Scenario (b) numbers its bodies; the sink knows each result by it.
            seq: order.seq,
            orderId: order.id,
            customer: `${order.firstName} ${order.lastName}`,
            total: order.price * order.quantity,
        },
        metadata: msg.metadata || {},
    });
}

module.exports.process = transform;
