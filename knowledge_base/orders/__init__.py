"""Work orders (工单) after they are created: their life, who is responsible, delivery and hot topics."""
