"""What the shop sells and where: products (tax-included integer yen), stores, malls."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    product_id: str
    name: str
    category: str
    price: int


@dataclass(frozen=True)
class Store:
    store_id: str
    name: str
    latitude: float
    longitude: float


PRODUCTS: tuple[Item, ...] = (
    Item("P-1001", "抹茶ラテ 10本入り", "食品", 1_580),
    Item("P-1002", "ほうじ茶ティーバッグ", "食品", 980),
    Item("P-1003", "京都 宇治抹茶 40g", "食品", 2_160),
    Item("P-2001", "今治タオル フェイス", "生活雑貨", 1_320),
    Item("P-2002", "今治タオル バス", "生活雑貨", 3_850),
    Item("P-2003", "有田焼 マグカップ", "食器", 2_750),
    Item("P-2004", "南部鉄器 急須", "食器", 12_100),
    Item("P-3001", "オーガニックコットン Tシャツ", "衣料", 3_980),
    Item("P-3002", "リネン シャツ", "衣料", 8_690),
    Item("P-3003", "ウール カーディガン", "衣料", 14_300),
    Item("P-4001", "保湿 化粧水 200ml", "コスメ", 2_420),
    Item("P-4002", "椿油 ヘアオイル", "コスメ", 1_870),
    Item("P-5001", "手ぬぐい 桜柄", "和雑貨", 1_100),
    Item("P-5002", "風呂敷 70cm", "和雑貨", 2_530),
    Item("P-6001", "ギフトセット 梅", "ギフト", 5_400),
    Item("P-6002", "ギフトセット 松", "ギフト", 10_800),
)

STORES: tuple[Store, ...] = (
    Store("S-SHIBUYA", "渋谷店", 35.6595, 139.7005),
    Store("S-SHINJUKU", "新宿店", 35.6909, 139.7003),
    Store("S-UMEDA", "梅田店", 34.7025, 135.4959),
    Store("S-SAKAE", "栄店", 35.1709, 136.9084),
    Store("S-TENJIN", "天神店", 33.5903, 130.3989),
    Store("S-SAPPORO", "札幌店", 43.0687, 141.3508),
)

MALLS: tuple[str, ...] = ("rakuten", "yahoo", "amazon")

PREFECTURES: tuple[str, ...] = ("東京都", "大阪府", "愛知県", "福岡県", "北海道", "神奈川県")

FAMILY_NAMES: tuple[str, ...] = ("佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村")
GIVEN_NAMES: tuple[str, ...] = ("陽菜", "結衣", "葵", "蓮", "湊", "大翔", "美咲", "健太", "さくら")

PAGES: tuple[tuple[str, str], ...] = (
    ("/", "トップ"),
    ("/new", "新着アイテム"),
    ("/sale", "セール"),
    ("/stores", "店舗一覧"),
    ("/gift", "ギフト特集"),
)
