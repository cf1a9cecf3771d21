'use strict';

// The same transform as the jsonata step of bench/flows/oih.json.
async function transform(msg) {
    const order = msg.data || {};
    await this.emit('data', {
        data: {
            orderId: order.id,
            customer: `${order.firstName} ${order.lastName}`,
            total: order.price * order.quantity,
        },
        metadata: msg.metadata || {},
    });
}

module.exports.process = transform;
