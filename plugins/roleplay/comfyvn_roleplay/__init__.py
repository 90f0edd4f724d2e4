"""Roleplay import: SillyTavern chats, character cards and lorebooks to ComfyVN projects."""
