"""The safety gates, one per module; ``safety.chain.GATES`` fixes their order."""

from ibkr_mcp.safety.gates.allowlists import AllowlistGate
from ibkr_mcp.safety.gates.approval import ApprovalGate
from ibkr_mcp.safety.gates.base import Gate, Outcome, Verdict
from ibkr_mcp.safety.gates.concentration import ConcentrationGate
from ibkr_mcp.safety.gates.confirmation import ConfirmationGate
from ibkr_mcp.safety.gates.daily_loss import DailyLossGate
from ibkr_mcp.safety.gates.daily_notional import DailyNotionalGate
from ibkr_mcp.safety.gates.duplicate_order import DuplicateOrderGate
from ibkr_mcp.safety.gates.emergency_stop import EmergencyStopGate
from ibkr_mcp.safety.gates.kill_switch import KillSwitchGate
from ibkr_mcp.safety.gates.live_override import LiveOverrideGate
from ibkr_mcp.safety.gates.notional import NotionalGate
from ibkr_mcp.safety.gates.order_rate import OrderRateGate
from ibkr_mcp.safety.gates.orders_enabled import OrdersEnabledGate
from ibkr_mcp.safety.gates.price_band import PriceBandGate
from ibkr_mcp.safety.gates.quantity import QuantityGate
from ibkr_mcp.safety.gates.rejection_breaker import RejectionBreakerGate
from ibkr_mcp.safety.gates.short_sale import ShortSaleGate
from ibkr_mcp.safety.gates.trading_hours import TradingHoursGate
from ibkr_mcp.safety.gates.trading_mode import TradingModeGate

__all__ = [
    "AllowlistGate",
    "ApprovalGate",
    "ConcentrationGate",
    "ConfirmationGate",
    "DailyLossGate",
    "DailyNotionalGate",
    "DuplicateOrderGate",
    "EmergencyStopGate",
    "Gate",
    "KillSwitchGate",
    "LiveOverrideGate",
    "NotionalGate",
    "OrderRateGate",
    "OrdersEnabledGate",
    "Outcome",
    "PriceBandGate",
    "QuantityGate",
    "RejectionBreakerGate",
    "ShortSaleGate",
    "TradingHoursGate",
    "TradingModeGate",
    "Verdict",
]
